"""The pure assignment module, hit directly: hashing, balance, layers, ramping,
weights, targeting, holdouts, forced variants."""

import dataclasses
import random
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from experiments import assignment as a
from tests.processes import ROOT

USERS = [f"user-{i}" for i in range(100_000)]


def experiment(key="exp", layer="L", salt="s1", start=0, end=10_000, traffic=100.0, weights=None,
               targeting=None, forced=None, id=1):
    weights = weights or {"control": 50, "treatment": 50}
    return a.ExperimentConfig(
        id=id, key=key, layer=layer, salt=salt, bucket_start=start, bucket_end=end, traffic_percent=traffic,
        allocation=a.initial_allocation(weights),
        variants={k: a.VariantConfig(id=i, key=k, recommender={"name": "popularity"}, is_control=i == 0)
                  for i, k in enumerate(weights)},
        targeting=targeting or {}, forced=forced or {},
    )


def config(*layers, holdout=None):
    return a.AssignmentConfig(version=1, surfaces={"closeup": a.build_surface(layers, holdout)})


def variant_of(cfg, user, attributes=None):
    result = a.assign(cfg, "closeup", user, attributes or {})
    return {r.experiment.key: r.variant for r in result}


def test_bucket_matches_the_documented_test_vectors():
    # The same vectors are in docs/assignment.md, for anyone reimplementing the hash.
    assert a.bucket_for("user-1", "layer-salt") == 8178
    assert a.bucket_for("user-2", "layer-salt") == 8516
    assert a.bucket_for("alice", "abc:traffic") == 1403
    assert a.bucket_for("bob", "abc:variant") == 5676


def test_buckets_are_the_same_in_another_process():
    code = "from experiments.assignment import bucket_for; print([bucket_for(f'u{i}', 'salt') for i in range(500)])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([a.bucket_for(f"u{i}", "salt") for i in range(500)])


@pytest.mark.parametrize("weights", [{"a": 50, "b": 50}, {"a": 10, "b": 30, "c": 60}])
def test_variants_are_balanced_over_100k_users(weights):
    cfg = config(("L", "layer-salt", [experiment(weights=weights)]))
    counts = {k: 0 for k in weights}
    for user in USERS:
        counts[variant_of(cfg, user)["exp"]] += 1
    expected = [len(USERS) * w / 100 for w in weights.values()]
    assert stats.chisquare(list(counts.values()), expected).pvalue > 0.001


def test_experiments_in_one_layer_are_mutually_exclusive_and_split_it():
    cfg = config(("L", "layer-salt", [experiment("first", start=0, end=3000, id=1),
                                      experiment("second", salt="s2", start=3000, end=10_000, id=2)]))
    seen = {"first": 0, "second": 0}
    for user in USERS:
        got = variant_of(cfg, user)
        assert len(got) == 1, got
        seen.update({k: seen[k] + 1 for k in got})
    assert stats.chisquare([seen["first"], seen["second"]], [30_000, 70_000]).pvalue > 0.001


def test_layers_are_independent():
    cfg = config(
        ("L1", "salt-one", [experiment("e1", layer="L1", salt="x1", weights={"a": 50, "b": 50}, id=1)]),
        ("L2", "salt-two", [experiment("e2", layer="L2", salt="x2", weights={"c": 20, "d": 30, "e": 50}, id=2)]),
    )
    table = np.zeros((2, 3))
    rows, cols = {"a": 0, "b": 1}, {"c": 0, "d": 1, "e": 2}
    for user in USERS:
        got = variant_of(cfg, user)
        table[rows[got["e1"]], cols[got["e2"]]] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_ramping_traffic_up_keeps_every_included_user_in_their_variant():
    at_10 = config(("L", "ls", [experiment(traffic=10)]))
    at_50 = config(("L", "ls", [experiment(traffic=50)]))
    before = {u: variant_of(at_10, u).get("exp") for u in USERS}
    after = {u: variant_of(at_50, u).get("exp") for u in USERS}
    included_before = [u for u, v in before.items() if v]
    assert all(after[u] == before[u] for u in included_before)
    assert abs(len(included_before) / len(USERS) - 0.10) < 0.005
    assert abs(sum(1 for v in after.values() if v) / len(USERS) - 0.50) < 0.005


def test_paused_or_absent_experiment_assigns_nothing():
    assert a.assign(config(), "closeup", "u1", {}) == []
    assert a.assign(config(("L", "ls", [experiment()])), "other-surface", "u1", {}) == []


def moved_share(old, new):
    def owner(alloc):
        out = np.empty(a.BUCKETS, dtype=object)
        for s, e, k in alloc:
            out[s:e] = k
        return out

    return float(np.mean(owner(old) != owner(new)))


@pytest.mark.parametrize(
    "old, new",
    [
        ({"a": 50, "b": 50}, {"a": 40, "b": 60}),
        ({"a": 34, "b": 33, "c": 33}, {"a": 20, "b": 40, "c": 40}),
        ({"a": 10, "b": 90}, {"a": 50, "b": 50}),
    ],
)
def test_weight_change_moves_exactly_the_minimum(old, new):
    before = a.initial_allocation(old)
    after = a.rebalance(before, new)
    tv_distance = sum(max(0, new[k] - old[k]) for k in new) / 100
    assert moved_share(before, after) == pytest.approx(tv_distance, abs=1e-4)
    assert a.allocation_shares(after) == pytest.approx({k: w / 100 for k, w in new.items()})


def test_weight_changes_in_sequence_stay_minimal_and_cover_all_buckets():
    rng = random.Random(7)
    alloc = a.initial_allocation({"a": 25, "b": 25, "c": 25, "d": 25})
    for _ in range(50):
        raw = [rng.randint(1, 100) for _ in range(4)]
        weights = dict(zip("abcd", (100 * r / sum(raw) for r in raw), strict=True))
        shares_before = a.allocation_shares(alloc)
        new = a.rebalance(alloc, weights)
        counts = a.bucket_counts(weights)
        tv = sum(max(0, counts[k] - round(shares_before.get(k, 0) * a.BUCKETS)) for k in counts) / a.BUCKETS
        assert moved_share(alloc, new) == pytest.approx(tv, abs=1e-9)
        assert sum(e - s for s, e, _ in new) == a.BUCKETS and new[0][0] == 0
        assert all(x[1] == y[0] for x, y in zip(new, new[1:], strict=False))
        alloc = new


def test_users_in_unchanged_buckets_keep_their_variant_after_a_weight_change():
    before = experiment(weights={"a": 50, "b": 50})
    after = dataclasses.replace(before, allocation=a.rebalance(before.allocation, {"a": 30, "b": 70}))
    sample = USERS[:20_000]
    # b only grew: no user of b moves, and the users who move are a's 20 points.
    assert all(after.variant_for(u) == "b" for u in sample if before.variant_for(u) == "b")
    moved = sum(1 for u in sample if before.variant_for(u) != after.variant_for(u))
    assert abs(moved / len(sample) - 0.20) < 0.01


COUNTRY_US = {"attribute": "country", "op": "eq", "value": "US"}


@pytest.mark.parametrize(
    "rule, attributes, expected",
    [
        ({}, {}, True),
        (COUNTRY_US, {"country": "US"}, True),
        (COUNTRY_US, {"country": "FR"}, False),
        (COUNTRY_US, {}, False),
        ({"attribute": "country", "op": "ne", "value": "US"}, {}, True),
        ({"attribute": "country", "op": "in", "value": ["US", "CA"]}, {"country": "CA"}, True),
        ({"attribute": "country", "op": "not_in", "value": ["US", "CA"]}, {"country": "CA"}, False),
        ({"attribute": "country", "op": "not_in", "value": ["US"]}, {}, True),
        ({"attribute": "age", "op": "gte", "value": 18}, {"age": 18}, True),
        ({"attribute": "age", "op": "gt", "value": 18}, {"age": 18}, False),
        ({"attribute": "age", "op": "lt", "value": 18}, {"age": "17"}, False),  # a string is not a number
        ({"attribute": "age", "op": "lte", "value": 18}, {"age": 17.5}, True),
        ({"all": [COUNTRY_US, {"attribute": "platform", "op": "eq", "value": "ios"}]},
         {"country": "US", "platform": "android"}, False),
        ({"any": [COUNTRY_US, {"attribute": "platform", "op": "eq", "value": "ios"}]},
         {"country": "FR", "platform": "ios"}, True),
        ({"not": COUNTRY_US}, {"country": "US"}, False),
    ],
)
def test_targeting_conditions(rule, attributes, expected):
    assert a.validate_targeting(rule) == []
    assert a.matches(rule, attributes) is expected


@pytest.mark.parametrize(
    "rule, message",
    [
        ([], "targeting: must be an object"),
        ({"attribute": "x", "op": "like", "value": 1}, "targeting.op: must be one of"),
        ({"attribute": "x", "op": "in", "value": "US"}, "targeting.value: in needs a list"),
        ({"attribute": "x", "op": "gt", "value": "5"}, "targeting.value: gt needs a number"),
        ({"all": []}, "targeting.all: must be a non-empty list"),
        ({"all": [{"attribute": "x"}]}, "targeting.all[0]: a condition has exactly the keys"),
    ],
)
def test_invalid_targeting_is_explained(rule, message):
    errors = a.validate_targeting(rule)
    assert errors and errors[0].startswith(message)


def test_users_who_do_not_match_targeting_are_not_assigned():
    cfg = config(("L", "ls", [experiment(targeting=COUNTRY_US)]))
    assert variant_of(cfg, "u1", {"country": "FR"}) == {}
    assert "exp" in variant_of(cfg, "u1", {"country": "US"})


def test_holdout_keeps_its_share_of_users_out_of_every_experiment():
    holdout = a.HoldoutConfig(salt="holdout-salt", percent=10)
    cfg = config(("L1", "s1", [experiment("e1", layer="L1", salt="a", id=1)]),
                 ("L2", "s2", [experiment("e2", layer="L2", salt="b", id=2)]), holdout=holdout)
    held = [u for u in USERS if holdout.holds_out(u)]
    assert abs(len(held) / len(USERS) - 0.10) < 0.005
    assert all(variant_of(cfg, u) == {} for u in held[:2000])
    assert all(len(variant_of(cfg, u)) == 2 for u in USERS[:2000] if not holdout.holds_out(u))


def test_forced_users_get_their_variant_whatever_the_rules():
    holdout = a.HoldoutConfig(salt="h", percent=100)  # everyone held out
    exp = experiment(traffic=0, targeting=COUNTRY_US, forced={"qa-1": "treatment"})
    cfg = config(("L", "ls", [exp]), holdout=holdout)
    result = a.assign(cfg, "closeup", "qa-1", {"country": "FR"})
    assert [(r.experiment.key, r.variant, r.forced) for r in result] == [("exp", "treatment", True)]
    assert a.assign(cfg, "closeup", "someone-else", {"country": "US"}) == []


def test_overlapping_slices_are_refused_when_building():
    with pytest.raises(ValueError, match="overlap"):
        a.build_surface([("L", "s", [experiment("x", start=0, end=600), experiment("y", start=500, end=900)])])
