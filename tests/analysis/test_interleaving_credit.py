"""Interleaving credit in the SQL, on every database of the run: each click or save
credited to the team that placed the item in that request, users counted by the team
they preferred day by day, and uncredited engagements counted, against a Python
reference on the raw rows; then the report's interleaving block against scipy on the
per-user scores."""

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from analysis import services
from analysis.report import Report
from analysis.sufficient_statistics import preference_counts
from tests.analysis.conftest import ALIASES, add_exposures, add_rows, clear_events, make_experiment

pytestmark = pytest.mark.django_db(databases=ALIASES)

def _world(alias, rng, as_of, n_users=160, treatment_click=0.35, control_click=0.25):
    """Users in an interleaving experiment, each with a few merged closeups over the
    last three days and clicks on them (the treatment's items clicked more), plus what
    must not be credited: clicks before exposure, without a request, at a position
    never served, on another user's request, on another experiment's labelled list;
    and clicks without a position, credited by their pin."""
    exp, (control, treatment) = make_experiment(alias, "interleaved", names=["popularity", "ranker"])
    exp.design = "interleaving"
    exp.save(using=alias)
    other, (other_a, _) = make_experiment(alias, "other-interleaved", names=["a", "b"])
    exposures, rows, truth = [], [], {}
    requests_of = {}
    for i in range(n_users):
        user = f"u{i}"
        t0 = as_of - timedelta(days=float(rng.uniform(0.1, 2.8)))
        forced = i % 29 == 0
        exposures.append(((control, treatment)[i % 2], user, t0, {}, forced))
        truth[user] = (t0, forced)
        for _ in range(int(rng.integers(1, 4))):
            served = min(t0 + timedelta(hours=float(rng.uniform(0, 40))), as_of - timedelta(minutes=5))
            request = uuid.uuid4()
            requests_of.setdefault(user, []).append((request, served))
            teams = [(control, treatment)[int(b)] for b in rng.integers(0, 2, 6)]
            for position, team in enumerate(teams):
                pin = 1000 + position
                rows.append((user, "impression", served, pin, request, position, team.id))
                if rng.random() < (treatment_click if team is treatment else control_click):
                    kind = "save" if rng.random() < 0.3 else "click"
                    when = served + timedelta(seconds=30)
                    if rng.random() < 0.15:  # no position: credited by the pin within the request
                        rows.append((user, kind, when, pin, request, None, None))
                    else:
                        rows.append((user, kind, when, pin, request, position, None))
        request, served = requests_of[user][0]
        if i % 7 == 0:
            rows.append((user, "click", served + timedelta(seconds=5), 1, None, None, None))  # no request id
        if i % 9 == 0:
            rows.append((user, "click", served + timedelta(seconds=5), 1, request, 40, None))  # never served there
        if i % 11 == 0:
            rows.append((user, "click", t0 - timedelta(hours=1), 1000, request, 0, None))  # before exposure
        if i % 13 == 0:
            rows.append((user, "closeup", served + timedelta(seconds=6), 1000, request, 0, None))  # not an engagement
    # Another user clicking on u1's request, and a list labelled by another experiment.
    stolen, served = requests_of["u1"][0]
    rows.append(("u2", "click", served + timedelta(seconds=9), 1000, stolen, 0, None))
    foreign = uuid.uuid4()
    rows.append(("u3", "impression", as_of - timedelta(hours=2), 1000, foreign, 0, other_a.id))
    rows.append(("u3", "click", as_of - timedelta(hours=2) + timedelta(seconds=3), 1000, foreign, 0, None))
    add_exposures(alias, exp, exposures)
    add_rows(alias, rows)
    return exp, control, treatment, truth, rows


def _reference(rows, truth, control, treatment, as_of):
    """Per user and day, in plain Python: credits per team, and the uncredited."""
    served = {(r[0], r[4], r[5]): r[6] for r in rows if r[1] == "impression" and r[6] in (control.id, treatment.id)}
    by_pin = {(r[0], r[4], r[3]): r[6] for r in rows if r[1] == "impression" and r[6] in (control.id, treatment.id)}
    per_user_day = defaultdict(lambda: [0, 0, 0])
    for user, kind, t, pin, request, position, _ in rows:
        if kind not in ("click", "save") or user not in truth or truth[user][1] or t < truth[user][0] or t > as_of:
            continue
        team = served.get((user, request, position)) if position is not None else by_pin.get((user, request, pin))
        slot = per_user_day[(user, t.astimezone(UTC).date())]
        slot[0 if team == control.id else 1 if team == treatment.id else 2] += 1
    days = sorted({d for _, d in per_user_day})
    out, scores = [], {}
    for day in days:
        state, unc = {}, 0
        for (user, d), (c, t, u) in per_user_day.items():
            if d <= day:
                cc, ct = state.get(user, (0, 0))
                state[user] = (cc + c, ct + t)
                unc += u
        wins_c = sum(1 for c, t in state.values() if c > t)
        wins_t = sum(1 for c, t in state.values() if t > c)
        ties = sum(1 for c, t in state.values() if c == t and c > 0)
        out.append((day, (wins_c, wins_t, ties, unc)))
        scores = {u: np.sign(t - c) for u, (c, t) in state.items() if c + t > 0}
    return out, np.array(list(scores.values()), dtype=float)


@pytest.mark.parametrize("alias", ALIASES)
def test_credits_and_daily_preferences_equal_the_raw_rows(alias, rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    try:
        exp, control, treatment, truth, rows = _world(alias, rng, as_of)
        got = preference_counts(exp.id, control.id, treatment.id, as_of, using=alias)
        expected, _ = _reference(rows, truth, control, treatment, as_of)
        by_day = dict(zip(got.days, got.counts, strict=True))
        for day, counts in expected:
            assert by_day[day] == counts, day
        # Every day to the analysis day has its cumulative point, and the last one is the total.
        assert got.days[-1] == as_of.date()
        assert got.counts[-1] == expected[-1][1]
        wins_c, wins_t, ties, uncredited = got.counts[-1]
        assert wins_t > wins_c > 0 and ties > 0
        # The planted uncreditable clicks are all counted as such.
        assert uncredited >= len([u for u in truth if int(u[1:]) % 7 == 0 and not truth[u][1]])
    finally:
        clear_events(alias)


def test_the_report_of_an_interleaving_experiment_is_the_t_test_of_the_per_user_scores(rng):
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    try:
        exp, control, treatment, truth, rows = _world("default", rng, as_of, n_users=400)
        report = Report.from_json(services.compute(exp, as_of).to_json())
        _, scores = _reference(rows, truth, control, treatment, as_of)
        block = report.interleaving
        assert report.design == "interleaving"
        assert block.users == len(scores)
        assert block.wins == {"popularity": int(np.sum(scores < 0)), "ranker": int(np.sum(scores > 0))}
        assert block.ties == int(np.sum(scores == 0))
        reference = stats.ttest_1samp(scores, 0.0)
        low, high = reference.confidence_interval(0.95)
        assert block.delta == pytest.approx(scores.mean(), rel=1e-12)
        assert block.p_value == pytest.approx(reference.pvalue, rel=1e-9)
        assert (block.ci_low, block.ci_high) == pytest.approx((low, high), rel=1e-9)
        assert block.significant == (reference.pvalue < 0.05)
        assert block.winner == ("ranker" if block.significant else None)
        assert block.series[-1].delta == block.delta and len(block.series) >= 3
        # The A/B machinery still reads the assignment split: the SRM check and the metrics are there.
        assert report.srm.observed and report.metrics
    finally:
        clear_events("default")
