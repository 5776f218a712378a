"""Team-draft interleaving against an A/B test, by simulation with a known truth. Pure:
numpy and scipy, no Django; `analysis.validation` turns it into a section of
docs/validation.md.

The simulated closeup grid:
    each visit shows K of a fresh pool of POOL candidate items; the user's true
    relevance of each is r ~ Beta(BETA_A, BETA_B), independent per user and item;
    a ranker of noise σ orders the pool by r + Normal(0, σ): the control has more
    noise than the treatment, a known quality gap; A/A puts one ranker on both teams;
    the item at position p (0-based) is clicked with probability r / log2(p + 2)
    (demo.simulator's position bias), independently per position;
    a user makes 1 + Poisson(EXTRA_VISITS) visits.
Users alike or differing: in the second model (`DIFFERING`), as real users do, each
user has a click propensity c ~ Gamma(k_c, 1/k_c) (mean 1) that scales every click
probability of theirs, and an activity a ~ Gamma(k_a, EXTRA_VISITS/k_a), making
1 + Poisson(a) visits: the between-user variance an A/B test pays for and interleaving,
which compares both rankers inside each user's own visits, does not.
A/B: half the users see the control's top K on every visit, half the treatment's;
the metric is clicks per user, tested with the production `compare`. Interleaving:
every visit shows the production `team_draft` of the two rankings, seeded by a request
id through `request_seed`; a click credits the team that placed the item, and a user
with a credited click scores the sign of (treatment credits − control credits), tested
with the production `preference_test`.

Visits are independent given the rankers (a fresh pool every time), so each condition's
visits are simulated once into a bank and every simulated experiment draws its users'
visits from it, with replacement. That is what makes a thousand experiments of
thousands of users affordable with a Python merge per list; the bank is large enough
that its own sampling error is a small fraction of any one experiment's (the clicks on an
interleaved list are drawn afresh each time it is drawn, and the A/B sizes come from
expected clicks on the same pools under both rankers).
"""

import math
from dataclasses import dataclass

import numpy as np

from analysis.metric_kinds.registry import metric_value
from analysis.stats.frequentist import Comparison, compare
from analysis.stats.interleaving import PreferenceCounts, preference_test, users_for_power, winner
from analysis.stats.moments import Moments
from analysis.stats.power import users_per_variant
from experiments.interleaving import request_seed, team_draft

POOL, K = 50, 25
BETA_A, BETA_B = 1.0, 30.0
SIGMA_CONTROL, SIGMA_TREATMENT = 0.03, 0.025
EXTRA_VISITS = 1.5
# Visits per bank. The interleaved banks cost a Python merge per visit; the A/B banks are
# numpy alone, so they are made larger, which keeps the A/B side's truth precise.
AA_BANK, AB_BANK, CLICK_BANK = 100_000, 200_000, 400_000
EXAMINE = 1.0 / np.log2(np.arange(K) + 2.0)


@dataclass(frozen=True)
class UserModel:
    """How users differ: None for a shape means not at all."""

    propensity_shape: float | None = None  # c ~ Gamma(k, 1/k), mean 1, variance 1/k
    activity_shape: float | None = None  # a ~ Gamma(k, EXTRA_VISITS/k), visits 1 + Poisson(a)

    def visits_moments(self) -> tuple[float, float]:
        """E[V] and Var(V) of a user's visits."""
        extra = EXTRA_VISITS * EXTRA_VISITS / self.activity_shape if self.activity_shape else 0.0
        return 1 + EXTRA_VISITS, EXTRA_VISITS + extra

    def propensity_second_moment(self) -> float:
        return 1 + 1 / self.propensity_shape if self.propensity_shape else 1.0


ALIKE = UserModel()
# A coefficient of variation of 0.71 in propensity and in activity: a modest spread
# next to production traffic, where a few users click many times what most do.
DIFFERING = UserModel(propensity_shape=2.0, activity_shape=2.0)
CONTROL, TREATMENT = "control", "treatment"


@dataclass(frozen=True)
class Interleaved:
    """Merged lists, one row per visit: each position's click probability and whether the
    treatment's team placed the item there. Clicks are drawn afresh each time a visit is
    drawn, so the bank fixes only the pools, the rankers' noise and the coins, and its own
    sampling error is that of the expected credits, a fraction of the clicks' noise."""

    p_click: np.ndarray  # (visits, K)
    treatment_placed: np.ndarray  # (visits, K) bool
    credits: np.ndarray  # (visits, 2): one draw of the clicks credited to control, treatment

    def half(self, i: int) -> "Interleaved":
        cut = slice(None, len(self.p_click) // 2) if i == 0 else slice(len(self.p_click) // 2, None)
        return Interleaved(self.p_click[cut], self.treatment_placed[cut], self.credits[cut])


@dataclass(frozen=True)
class Bank:
    """Per-visit outcomes of each condition."""

    clicks_control: np.ndarray  # A/B: clicks on a visit showing the control's top K
    clicks_treatment: np.ndarray
    expected: np.ndarray  # (visits, 2): expected clicks per visit under control, treatment (same pools)
    click_noise: np.ndarray  # (visits, 2): the clicks' variance given the visit, Σ p(1 − p)
    aa: Interleaved  # one ranker on both teams
    ab: Interleaved  # the control ranker against the treatment ranker

    def half(self, i: int) -> "Bank":
        """Half of every bank: two halves that disagree show what the bank's own size costs."""
        def cut(a):
            return a[:len(a) // 2] if i == 0 else a[len(a) // 2:]

        return Bank(cut(self.clicks_control), cut(self.clicks_treatment), cut(self.expected), cut(self.click_noise),
                    self.aa.half(i), self.ab.half(i))


def _pools(rng, visits: int) -> np.ndarray:
    return rng.beta(BETA_A, BETA_B, (visits, POOL))


def _ranked(rng, relevance: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The ranker's top K items (indices into the pool, best first) and its scores of them."""
    scores = relevance + rng.normal(0.0, sigma, relevance.shape)
    top = np.argsort(-scores, axis=1)[:, :K]
    return top, np.take_along_axis(scores, top, axis=1)


def _p_click(relevance: np.ndarray, shown: np.ndarray) -> np.ndarray:
    return EXAMINE * np.take_along_axis(relevance, shown, axis=1)


def shown_clicks(rng, visits: int, chunk: int = 50_000) -> tuple[np.ndarray, ...]:
    """Per visit showing the control's and the treatment's top K: the clicks, their
    expectation and their variance given the visit. Both rankers see the same pools and the
    same click draws, so the bank's lift is the rankers' difference and not two samples'
    noise; the experiments still draw each arm's visits independently."""
    clicks, expected, noise = [], [], []
    for start in range(0, visits, chunk):
        relevance = _pools(rng, min(chunk, visits - start))
        uniforms = rng.random((len(relevance), K))
        p = [_p_click(relevance, _ranked(rng, relevance, sigma)[0]) for sigma in (SIGMA_CONTROL, SIGMA_TREATMENT)]
        clicks.append(np.stack([(uniforms < q).sum(axis=1) for q in p], axis=1))
        expected.append(np.stack([q.sum(axis=1) for q in p], axis=1))
        noise.append(np.stack([(q * (1 - q)).sum(axis=1) for q in p], axis=1))
    clicks = np.concatenate(clicks)
    return clicks[:, 0], clicks[:, 1], np.concatenate(expected), np.concatenate(noise)


def interleaved_lists(rng, visits: int, sigma_control: float, sigma_treatment: float, request_prefix: str,
                      progress=lambda n: None) -> Interleaved:
    """The production merge of the two rankers' lists on each visit. With equal σ the two
    teams hold the very same ranking (one ranker's noisy scores), which is an A/A: whatever
    the merge credits then is the coin's doing alone."""
    relevance = _pools(rng, visits)
    top_c, score_c = _ranked(rng, relevance, sigma_control)
    if sigma_control == sigma_treatment:
        top_t, score_t = top_c, score_c
    else:
        top_t, score_t = _ranked(rng, relevance, sigma_treatment)
    shown = np.empty((visits, K), dtype=np.int64)
    treatment_placed = np.empty((visits, K), dtype=bool)
    for i in range(visits):
        rankings = {CONTROL: list(zip(top_c[i].tolist(), score_c[i].tolist(), strict=True)),
                    TREATMENT: list(zip(top_t[i].tolist(), score_t[i].tolist(), strict=True))}
        merged = team_draft(rankings, K, request_seed(f"{request_prefix}-{i}"))
        shown[i] = [p.item for p in merged]
        treatment_placed[i] = [p.team == TREATMENT for p in merged]
        if i % 1000 == 999:
            progress(1000)
    progress(visits % 1000)
    p_click = _p_click(relevance, shown).astype(np.float32)
    clicks = rng.random((visits, K), dtype=np.float32) < p_click
    to_treatment = (clicks & treatment_placed).sum(axis=1)
    return Interleaved(p_click, treatment_placed, np.stack([clicks.sum(axis=1) - to_treatment, to_treatment], axis=1))


def make_bank(rng, aa: int = AA_BANK, ab: int = AB_BANK, clicks: int = CLICK_BANK, progress=lambda n: None) -> Bank:
    prefix = f"sim-{int(rng.integers(2**32))}"
    return Bank(*shown_clicks(rng, clicks),
                interleaved_lists(rng, aa, SIGMA_CONTROL, SIGMA_CONTROL, f"{prefix}-aa", progress),
                interleaved_lists(rng, ab, SIGMA_CONTROL, SIGMA_TREATMENT, f"{prefix}-ab", progress))


def _visits(rng, n: int, model: UserModel = ALIKE) -> np.ndarray:
    """Whose each visit is: a user makes 1 + Poisson(activity) of them."""
    activity = (rng.gamma(model.activity_shape, EXTRA_VISITS / model.activity_shape, n) if model.activity_shape
                else EXTRA_VISITS)
    return np.repeat(np.arange(n), 1 + rng.poisson(activity, n))


def users(rng, per_visit: np.ndarray, n: int) -> np.ndarray:
    """n users' totals over their visits, drawn from a bank (per visit one column or several)."""
    owner = _visits(rng, n)
    drawn = per_visit[rng.integers(0, len(per_visit), owner.size)]
    if drawn.ndim == 1:
        return np.bincount(owner, weights=drawn, minlength=n)
    return np.stack([np.bincount(owner, weights=drawn[:, j], minlength=n) for j in range(drawn.shape[1])], axis=1)


def user_credits(rng, lists: Interleaved, n: int, model: UserModel = ALIKE) -> np.ndarray:
    """(n, 2): n users' clicks credited to control and treatment over their visits."""
    owner = _visits(rng, n, model)
    drawn = rng.integers(0, len(lists.p_click), owner.size)
    p_click = lists.p_click[drawn]
    if model.propensity_shape:
        propensity = rng.gamma(model.propensity_shape, 1 / model.propensity_shape, n).astype(np.float32)
        p_click = np.minimum(1.0, p_click * propensity[owner][:, None])
    clicks = rng.random((owner.size, K), dtype=np.float32) < p_click
    to_treatment = (clicks & lists.treatment_placed[drawn]).sum(axis=1)
    to_control = clicks.sum(axis=1) - to_treatment
    return np.stack([np.bincount(owner, weights=to_control, minlength=n),
                     np.bincount(owner, weights=to_treatment, minlength=n)], axis=1)


def preference_counts(credits: np.ndarray) -> PreferenceCounts:
    """Users by preference; a user with no credited click has none and is not counted."""
    diff = credits[:, 1] - credits[:, 0]
    clicked = credits.sum(axis=1) > 0
    return PreferenceCounts(int(np.sum(diff < 0)), int(np.sum(diff > 0)), int(np.sum(clicked & (diff == 0))))


def ab_test(rng, bank: Bank, n_total: int) -> Comparison:
    half = n_total // 2
    control, treatment = users(rng, bank.clicks_control, half), users(rng, bank.clicks_treatment, n_total - half)
    return compare(metric_value("mean", Moments.from_data(treatment)), metric_value("mean", Moments.from_data(control)))


def interleaving_test(rng, lists: Interleaved, n: int, model: UserModel = ALIKE):
    return preference_test(preference_counts(user_credits(rng, lists, n, model)))


@dataclass(frozen=True)
class Sensitivity:
    ab_users: int  # total, both arms, for 80% power
    interleaving_users: int  # every user exposed, with a credited click or not
    clicked_share: float  # of exposed users, those with a credited click
    delta: float  # the true mean preference score among them
    score_variance: float
    ab_lift: float  # relative, clicks per user

    @property
    def ratio(self) -> float:
        return self.ab_users / self.interleaving_users


def clicks_per_user(bank: Bank, arm: int, model: UserModel = ALIKE) -> tuple[float, float]:
    """The mean and variance of a user's clicks in an A/B arm (0 control, 1 treatment).

    A user's clicks are a sum over their V visits with every click probability scaled by
    their propensity c, so their mean and variance follow exactly from the bank's per
    visit (μ = E[Σp], m₂ = E[Σp²], s² = Var(Σp) over visits): E = E[V]·μ and
    Var = E[V]·(μ − E[c²]·(m₂ − s²)) + μ²·Var(c·V), the law of total variance over the
    visit and then the user (with c ≡ 1: E[V]·(E[Σp(1 − p)] + s²) + Var(V)·μ²). Click
    probabilities c·p above 1 are not clipped here, as they are in the simulation; at these
    rates that is vanishingly rare."""
    mean_v, var_v = model.visits_moments()
    c2 = model.propensity_second_moment()
    mu = float(bank.expected[:, arm].mean())
    m2 = mu - float(bank.click_noise[:, arm].mean())
    s2 = float(bank.expected[:, arm].var())
    return mean_v * mu, mean_v * (mu - c2 * (m2 - s2)) + mu * mu * (c2 * (var_v + mean_v * mean_v) - mean_v * mean_v)


def sensitivity(rng, bank: Bank, population: int = 2_000_000, alpha: float = 0.05, power: float = 0.8,
                model: UserModel = ALIKE) -> Sensitivity:
    """Users each design needs for the same pair of rankers: A/B by the production
    calculator (two equal arms), interleaving by `users_for_power` over the users with a
    credited click, divided by their share of the users exposed.

    The preference score is a sign of a sum, which has no closed form like the clicks'
    (`clicks_per_user`): it is read off a large simulated population instead."""
    (mean_c, var_c), (mean_t, var_t) = clicks_per_user(bank, 0, model), clicks_per_user(bank, 1, model)
    lift = mean_t / mean_c - 1
    ab_users = 2 * users_per_variant(lift, mean_c, (var_c + var_t) / 2, alpha, power)
    # In slices, to hold memory near a slice's clicks; the three counts add up.
    wins_c = wins_t = ties = 0
    for start in range(0, population, 200_000):
        c = preference_counts(user_credits(rng, bank.ab, min(200_000, population - start), model))
        wins_c, wins_t, ties = wins_c + c.wins_control, wins_t + c.wins_treatment, ties + c.ties
    n = wins_c + wins_t + ties
    delta = (wins_t - wins_c) / n
    score_variance = (wins_t + wins_c - n * delta * delta) / (n - 1)
    needed = users_for_power(delta, score_variance, alpha, power)
    share = n / population
    return Sensitivity(int(ab_users), math.ceil(needed / share), share, delta, score_variance, lift)


def aa_rate(rng, bank: Bank, runs: int, n: int, progress=lambda: None) -> float:
    significant = 0
    for _ in range(runs):
        significant += interleaving_test(rng, bank.aa, n).significant
        progress()
    return significant / runs


def power_rate(rng, bank: Bank, runs: int, n: int, progress=lambda: None, model: UserModel = ALIKE) -> float:
    significant = 0
    for _ in range(runs):
        significant += interleaving_test(rng, bank.ab, n, model).significant
        progress()
    return significant / runs


@dataclass(frozen=True)
class Agreement:
    runs: int
    ab_significant: int
    same_winner: int  # interleaving named a significant winner on the A/B's side
    same_sign: int  # interleaving's Δ leaned the A/B's way, significant or not


def agreement(rng, bank: Bank, runs: int, n: int, progress=lambda: None) -> Agreement:
    """Each run is the same experiment twice, on n users each: an A/B test and an
    interleaving one. Only runs whose A/B verdict is significant are judged."""
    ab_significant = same_winner = same_sign = 0
    for _ in range(runs):
        ab = ab_test(rng, bank, n)
        # Each visit's one drawn set of clicks: at A/B sizes the interleaving test is far past
        # its power, so the bank's own error cannot decide a run, and fresh clicks for tens of
        # thousands of users a run would cost a minute.
        test = preference_test(preference_counts(users(rng, bank.ab.credits, n)))
        if ab.p_value < 0.05:
            ab_significant += 1
            ab_side = TREATMENT if ab.absolute_lift > 0 else CONTROL
            same_winner += winner(test, CONTROL, TREATMENT) == ab_side
            same_sign += test.delta is not None and (test.delta > 0) == (ab.absolute_lift > 0)
        progress()
    return Agreement(runs, ab_significant, same_winner, same_sign)
