"""Team-draft interleaving: the merged list is a fair draft of the teams' rankings.

Properties over random rankings (hypothesis), then the coin itself over many request
ids: neither team may be favoured at the top of the list, or a preference would be
measured where there is none."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.interleaving import request_seed, team_draft

ITEMS = st.integers(0, 40)


def _ranking(items):
    # Scores fall with the rank, as a ranker's would; distinct items, best first.
    return [(item, 1.0 / (rank + 1)) for rank, item in enumerate(dict.fromkeys(items))]


rankings_of_two = st.fixed_dictionaries({
    "control": st.lists(ITEMS, max_size=30).map(_ranking),
    "treatment": st.lists(ITEMS, max_size=30).map(_ranking),
})
ks = st.integers(0, 35)
seeds = st.integers(0, 2**64 - 1)


def _union(rankings):
    return {item for ranking in rankings.values() for item, _ in ranking}


@settings(max_examples=300, deadline=None)
@given(rankings=rankings_of_two, k=ks, seed=seeds)
def test_the_list_holds_min_k_union_distinct_items_each_from_its_teams_ranking(rankings, k, seed):
    merged = team_draft(rankings, k, seed)
    items = [p.item for p in merged]
    assert len(items) == len(set(items))
    assert len(items) == min(k, len(_union(rankings)))
    for p in merged:
        assert (p.item, p.score) in rankings[p.team]


@settings(max_examples=300, deadline=None)
@given(rankings=rankings_of_two, k=ks, seed=seeds)
def test_each_teams_items_keep_the_order_of_its_ranking(rankings, k, seed):
    merged = team_draft(rankings, k, seed)
    for team, ranking in rankings.items():
        rank = {item: i for i, (item, _) in enumerate(ranking)}
        placed = [rank[p.item] for p in merged if p.team == team]
        assert placed == sorted(placed)


@settings(max_examples=300, deadline=None)
@given(rankings=rankings_of_two, k=ks, seed=seeds)
def test_two_teams_stay_within_one_item_of_each_other_while_both_can_pick(rankings, k, seed):
    merged = team_draft(rankings, k, seed)
    counts = Counter()
    for i, p in enumerate(merged):
        counts[p.team] += 1
        # A team can only run out once it has nothing left that the other team did not take.
        left = {team: {item for item, _ in ranking} - {q.item for q in merged[:i + 1]}
                for team, ranking in rankings.items()}
        if all(left.values()) and i % 2 == 1:  # the end of a full round of two picks
            assert abs(counts["control"] - counts["treatment"]) <= 1
    if merged and all(len({item for item, _ in r} - {q.item for q in merged}) for r in rankings.values()):
        # Neither ran dry: the teams drafted alternately, so their shares differ by at most one.
        assert abs(counts["control"] - counts["treatment"]) <= 1


@settings(max_examples=200, deadline=None)
@given(rankings=rankings_of_two, k=ks, seed=seeds)
def test_the_same_seed_replays_the_same_list_whatever_the_mapping_order(rankings, k, seed):
    first = team_draft(rankings, k, seed)
    assert team_draft(rankings, k, seed) == first
    assert team_draft(dict(reversed(list(rankings.items()))), k, seed) == first


@settings(max_examples=200, deadline=None)
@given(rankings=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(ITEMS, max_size=20).map(_ranking),
                                min_size=3, max_size=3),
       k=ks, seed=seeds)
def test_multileaving_three_teams_fills_the_list_fairly(rankings, k, seed):
    merged = team_draft(rankings, k, seed)
    items = [p.item for p in merged]
    assert len(items) == len(set(items)) == min(k, len(_union(rankings)))
    for p in merged:
        assert (p.item, p.score) in rankings[p.team]
    counts = Counter(p.team for p in merged)
    if all(len({item for item, _ in r} - set(items)) for r in rankings.values()):
        # Nobody ran dry: every team picked once a round, the last round possibly cut short by k.
        assert max(counts[t] for t in rankings) - min(counts[t] for t in rankings) <= 1
    assert team_draft(dict(reversed(list(rankings.items()))), k, seed) == merged


def test_a_replayed_request_id_gives_the_same_list_and_different_ids_differ():
    rankings = {"control": _ranking(range(20)), "treatment": _ranking(range(19, -1, -1))}
    assert request_seed("req-1") == request_seed("req-1")
    assert team_draft(rankings, 10, request_seed("req-1")) == team_draft(rankings, 10, request_seed("req-1"))
    lists = {tuple(p.team for p in team_draft(rankings, 10, request_seed(f"req-{i}"))) for i in range(50)}
    assert len(lists) > 10


def test_the_coin_favours_neither_team_at_the_top_of_the_list():
    # Two different rankings, so both teams always have a distinct item to place; 4,000
    # requests put a fair coin's share within ±3 points with a margin of about 3.8 σ.
    rankings = {"control": _ranking(range(30)), "treatment": _ranking([5, 3, 1, *range(30, 50)])}
    requests = 4_000
    at = [Counter() for _ in range(3)]
    for i in range(requests):
        merged = team_draft(rankings, 25, request_seed(f"request-{i}"))
        for position in range(3):
            at[position][merged[position].team] += 1
    for position, counts in enumerate(at):
        for team in rankings:
            assert abs(counts[team] / requests - 0.5) <= 0.03, (position, counts)
