"""The offline gate's rule, over its corners."""

from hypothesis import given
from hypothesis import strategies as st

from recommenders.gate import GateRule, OfflineMetrics, decide

share = st.floats(0, 1)
metrics = st.builds(OfflineMetrics, ndcg_at_10=share, coverage=share, users=st.integers(0, 10_000))
rules = st.builds(GateRule, max_ndcg_drop=st.floats(0, 0.2), max_coverage_drop=st.floats(0, 0.2),
                  min_users=st.integers(1, 500))


@given(metrics, metrics, rules)
def test_passes_exactly_when_no_drop_exceeds_its_margin_over_enough_users(candidate, baseline, rule):
    result = decide(candidate, baseline, rule)
    within = (candidate.ndcg_at_10 - baseline.ndcg_at_10 >= -rule.max_ndcg_drop
              and candidate.coverage - baseline.coverage >= -rule.max_coverage_drop)
    assert result.passed == (within and candidate.users >= rule.min_users)
    assert result.passed == (not result.reasons)
    assert result.ndcg_change == candidate.ndcg_at_10 - baseline.ndcg_at_10


@given(metrics, rules)
def test_the_first_version_is_only_asked_to_be_measurable(candidate, rule):
    result = decide(candidate, None, rule)
    assert result.passed == (candidate.users >= rule.min_users)
    assert result.ndcg_change is None and result.coverage_change is None


def test_reasons_say_by_how_much_and_what_was_allowed():
    rule = GateRule(max_ndcg_drop=0.01, max_coverage_drop=0.02, min_users=30)
    result = decide(OfflineMetrics(0.15, 0.10, 400), OfflineMetrics(0.18, 0.20, 400), rule)
    assert not result.passed
    assert result.reasons == (
        "NDCG@10 0.1500 is 0.0300 below the version in use's 0.1800 (at most 0.0100 allowed)",
        "coverage 10.0% is 10.0 pp below the version in use's 20.0% (at most 2.0 pp allowed)",
    )
