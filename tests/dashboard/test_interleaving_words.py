"""The words of an interleaving result, from the report alone (pure): which team leads
and by how much of the users with a preference, the p-value as the page writes it, and
a verdict box that never names a winner the interval does not support."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from analysis.report import AnalysisSettings, Report, SampleRatioCheck
from analysis.results import VariantInfo, interleaving_result
from dashboard.presenters import decision, interleaving_table, preference_words

CONTROL, TREATMENT = VariantInfo(1, "popularity", 50, True), VariantInfo(2, "ranker", 50, False)


def report(wins_control, wins_treatment, ties, srm_flagged=False) -> Report:
    block = interleaving_result(CONTROL, TREATMENT, [date(2026, 12, 1)], [(wins_control, wins_treatment, ties, 4)],
                                0.05)
    srm = SampleRatioCheck(p_value=1e-9 if srm_flagged else 0.5, flagged=srm_flagged, statistic=1.0,
                           observed={"popularity": 500, "ranker": 500}, expected={"popularity": 500, "ranker": 500})
    doc = Report(experiment="x", design="interleaving", settings=AnalysisSettings(), srm=srm, users=1000,
                 days_running=3.0, metrics=(), power=None, interleaving=block).to_json()
    return Report.from_json(doc)  # as the page reads it: from the stored document


def test_the_sentence_names_the_leader_and_its_share_of_users_with_a_preference():
    assert preference_words(report(502, 702, 40).interleaving) == (
        "Of 1,204 users with a preference, 58% preferred ranker's pins over popularity's; p < 0.0001")
    assert preference_words(report(58, 42, 0).interleaving).startswith(
        "Of 100 users with a preference, 58% preferred popularity's pins over ranker's; p = 0.1")


def test_nobody_with_a_preference_says_so_and_too_few_users_is_not_enough_data():
    assert preference_words(report(0, 0, 12).interleaving) == "No user has preferred either ranker's pins yet."
    box = decision(report(3, 9, 1))
    assert box.headline == "Not enough data yet: about 17 more users with a click"
    assert interleaving_table(report(3, 9, 1).interleaving)["verdict"] == "not enough data yet"


def test_a_broken_split_comes_before_any_preference():
    assert decision(report(100, 400, 10, srm_flagged=True)).headline == "Don't trust these results yet"


@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 100))
def test_the_verdict_box_names_a_winner_only_when_the_interval_excludes_zero(wins_c, wins_t, ties):
    r = report(wins_c, wins_t, ties)
    block, box = r.interleaving, decision(r)
    excludes_zero = block.ci_low is not None and (block.ci_low > 0 or block.ci_high < 0)
    assert block.significant == excludes_zero
    assert box.headline.endswith("is the better ranker") == excludes_zero
    if excludes_zero:
        assert box.headline.startswith("ranker" if block.delta > 0 else "popularity")
        assert block.winner == ("ranker" if block.delta > 0 else "popularity")
