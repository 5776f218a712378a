"""Power, minimum detectable effect and duration (statsmodels.stats.power).

For a metric with control value μ and per-user variance σ² (the delta method's for a
ratio), a relative effect δ is Cohen's d = δ·|μ| / σ, and a two-sided z-test with
n users in each of two arms has power Φ(d·sqrt(n/2) − z_{1−α/2}) (+ the other tail).
"""

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower

# Imported here, not first inside a solve: on import it sets its warnings to "always",
# ahead of the filter _quiet() puts in place.
from statsmodels.tools import sm_exceptions  # noqa: F401


@dataclass(frozen=True)
class PowerPlan:
    relative_mde: float
    users_per_variant: int | None  # the smallest arm's share of users_needed
    users_per_variant_now: int  # the control's users now
    users_per_variant_per_day: float  # the control's users per day
    days_needed: float | None
    days_remaining: float | None
    mde_now: float | None
    power_now: float | None  # the weakest comparison's, at the arms' current sizes
    comparisons: int = 1
    correction: str = "holm"
    per_comparison_alpha: float | None = None
    users_needed: int | None = None  # all arms together, split by the weights
    users_needed_smallest_arm: int | None = None
    users_per_day: float | None = None  # all arms together

    def as_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.__dict__.items()}


MIN_USERS = 2  # per variant: below it no variance can be estimated
MAX_USERS = 1e15  # per variant: more than there are people, by orders of magnitude


def effect_size(relative_mde: float, mean: float, unit_variance: float) -> float | None:
    """Cohen's d; None where it is undefined (no variance, no baseline, overflow)."""
    if not all(math.isfinite(x) for x in (relative_mde, mean, unit_variance)):
        return None
    if unit_variance <= 0 or mean == 0 or relative_mde <= 0:
        return None
    with _quiet():
        d = relative_mde * abs(mean) / math.sqrt(unit_variance)
    return d if math.isfinite(d) and d > 0 else None


def users_per_variant(relative_mde: float, mean: float, unit_variance: float, alpha: float = 0.05,
                      power: float = 0.8) -> int | None:
    """Users each variant needs to detect a relative effect with the given power; None
    where no sample size can (power at or below alpha, undefined effect)."""
    d = effect_size(relative_mde, mean, unit_variance)
    if d is None or not alpha < power < 1:
        return None
    # An effect so large that the smallest sample already has the power: statsmodels'
    # root finder has no root to find there and answers NaN.
    if _power(d, MIN_USERS, alpha) >= power:
        return MIN_USERS
    with _quiet():
        try:
            n = float(NormalIndPower().solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=1.0,
                                                   alternative="two-sided"))
        except (ValueError, RuntimeError, OverflowError, ZeroDivisionError):
            n = math.nan
    if not math.isfinite(n):
        # The root finder gives up on tiny effects (astronomical samples): the closed
        # form, which ignores the far tail's negligible power there, still answers.
        with _quiet():
            n = float(2 * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / d) ** 2)
    # Beyond this no experiment will ever have the users, and JSON readers lose
    # integers past 2**53: "cannot say" is the honest answer.
    return max(MIN_USERS, math.ceil(n)) if math.isfinite(n) and n <= MAX_USERS else None


def _power(d: float, n: float, alpha: float) -> float:
    with _quiet():
        return float(NormalIndPower().power(effect_size=d, nobs1=n, alpha=alpha, ratio=1.0, alternative="two-sided"))


@contextmanager
def _quiet():
    # Extreme inputs overflow inside statsmodels and scipy; what comes out is checked here.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def detectable_effect(n_per_variant: float, mean: float, unit_variance: float, alpha: float = 0.05,
                      power: float = 0.8) -> float | None:
    """The smallest relative effect n users per variant detect with the given power."""
    if effect_size(1.0, mean, unit_variance) is None or not n_per_variant >= MIN_USERS or not alpha < power < 1:
        return None
    with _quiet():
        try:
            d = float(NormalIndPower().solve_power(effect_size=None, nobs1=n_per_variant, alpha=alpha, power=power,
                                                   ratio=1.0, alternative="two-sided"))
        except (ValueError, RuntimeError, OverflowError, ZeroDivisionError):
            return None
    mde = d * math.sqrt(unit_variance) / abs(mean)
    return mde if math.isfinite(mde) else None


def power_at(relative_effect: float, n_per_variant: float, mean: float, unit_variance: float,
             alpha: float = 0.05) -> float | None:
    d = effect_size(relative_effect, mean, unit_variance)
    if d is None or not n_per_variant >= MIN_USERS or not math.isfinite(n_per_variant):
        return None
    return _power(d, n_per_variant, alpha)


def days_to_reach(smallest_arm: int | None, users_per_day: float, shares) -> float | None:
    """Days until the smallest arm has the users it needs, at users_per_day (all arms) split
    by the shares: for two equal arms, users per variant over users per variant per day."""
    if not smallest_arm or not shares or not users_per_day > 0 or not math.isfinite(users_per_day):
        return None
    days = smallest_arm / (users_per_day * min(shares))
    return days if math.isfinite(days) else None


def plan(relative_mde: float, mean: float, unit_variance: float, n_now: int, days_running: float,
         alpha: float = 0.05, power: float = 0.8, *, weights=None, arms_now=None,
         correction: str = "holm") -> PowerPlan:
    """The sample size the MDE needs, and how long the current traffic takes to reach it.

    `weights`: the planned split, control first (default: two equal arms); `arms_now`: each
    arm's users so far in the same order (default: n_now in every arm). The users needed
    are the total that gives every comparison the power after the correction; the days,
    the time the smallest arm takes to reach its share of it at all arms' users per day."""
    shares = normalized_weights(weights if weights is not None else (1, 1))
    sizes = list(arms_now) if arms_now is not None else [n_now] * (len(shares) if shares else 2)
    m = len(sizes) - 1
    total, smallest = needed_sizes(relative_mde, mean, unit_variance, shares, alpha, power, correction) or (None, None)
    per_day = n_now / days_running if days_running > 0 else 0.0
    all_per_day = sum(sizes) / days_running if days_running > 0 else 0.0
    days = days_to_reach(smallest, all_per_day, shares)
    remaining = max(0.0, days - days_running) if days is not None else None
    now = comparison_powers(relative_mde, mean, unit_variance, sizes[0], sizes[1:], alpha, correction)
    return PowerPlan(relative_mde, smallest, n_now, per_day, days, remaining,
                     allocation_mde(sizes[0], sizes[1:], mean, unit_variance, alpha, power, correction),
                     min(now) if now else None, comparisons=m, correction=correction,
                     per_comparison_alpha=per_comparison_alpha(alpha, m, correction), users_needed=total,
                     users_needed_smallest_arm=smallest, users_per_day=all_per_day)


# --- Any split, any number of treatments, the report's correction ----------------------
#
# A control with n_c users and treatments with n_1 … n_k: comparison j's difference has
# variance σ²(1/n_c + 1/n_j), so its z-statistic is N(λ_j, 1) with λ_j = d / sqrt(1/n_c + 1/n_j)
# (d = δ·|μ|/σ, every treatment assumed to carry the MDE), and two z's share the control's
# noise: corr(z_i, z_j) = (1/n_c) / sqrt((1/n_c + 1/n_i)(1/n_c + 1/n_j)). With one treatment,
# or no correction, a comparison's power is the closed form at α (statsmodels'
# NormalIndPower with ratio = n_j/n_c). With several under Holm or Benjamini–Hochberg, what
# a comparison's power is depends on the others' p-values; it is computed exactly as the
# report decides, on DRAWS fixed draws of the correlated z's (common random numbers, so the
# answer is deterministic and monotone in n; Monte Carlo error about 0.2 points).

DRAWS = 40_000
_DRAW_SEED = 20261204


def normalized_weights(weights) -> tuple[float, ...] | None:
    """Shares summing to 1, control first; None unless every weight is a positive finite
    number and there are a control and at least one treatment."""
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        return None
    if len(w) < 2 or not all(math.isfinite(x) and x > 0 for x in w):
        return None
    try:
        total = math.fsum(w)
    except OverflowError:  # weights near the float limit: their sum overflows unless scaled first
        top = max(w)
        w = [x / top for x in w]
        total = math.fsum(w)
    shares = tuple(x / total for x in w)
    return shares if all(s > 0 for s in shares) else None


def per_comparison_alpha(alpha: float, comparisons: int, correction: str = "holm") -> float:
    """The strictest level a comparison is tested at: α/m for Holm's first step (and
    Benjamini–Hochberg's smallest p), α without correction."""
    return alpha if correction == "none" or comparisons <= 1 else alpha / comparisons


def comparison_powers(relative_effect: float, mean: float, unit_variance: float, n_control: float,
                      n_treatments, alpha: float = 0.05, correction: str = "holm") -> list[float] | None:
    """Each treatment's chance that its comparison with the control is significant after
    the correction, when every treatment has the relative effect; None where it cannot
    be said (undefined effect, an arm under MIN_USERS, non-finite sizes)."""
    d = effect_size(relative_effect, mean, unit_variance)
    sizes = [n_control, *n_treatments]
    if (d is None or len(sizes) < 2 or not all(isinstance(n, int | float) and math.isfinite(n) and n >= MIN_USERS
                                               for n in sizes) or not 0 < alpha < 1):
        return None
    with _quiet():
        se = np.sqrt(1 / n_control + 1 / np.asarray(n_treatments, dtype=float))
        lam = d / se
        m = len(lam)
        if m == 1 or correction == "none":
            z = norm.ppf(1 - alpha / 2)
            out = norm.sf(z - lam) + norm.cdf(-z - lam)
        else:
            out = _corrected_power(lam, (1 / n_control) / np.outer(se, se), alpha, correction)
    return [min(1.0, max(0.0, float(p))) for p in out]


def _corrected_power(lam, corr, alpha: float, correction: str):
    m = len(lam)
    np.fill_diagonal(corr, 1.0)
    e = _draws(m) @ np.linalg.cholesky(corr).T
    p = 2 * norm.sf(np.abs(e + lam))
    ps = np.sort(p, axis=1)
    ranks = np.arange(1, m + 1)
    if correction == "bh":
        k = np.where(ps <= alpha * ranks / m, ranks, 0).max(axis=1)
        reject = p <= (alpha * k / m)[:, None]
    else:  # holm: reject the smallest p-values while each stays under α/(m − rank + 1)
        count = np.cumprod(ps <= alpha / (m - ranks + 1), axis=1).sum(axis=1)
        cut = np.where(count > 0, ps[np.arange(len(ps)), np.maximum(count - 1, 0)], -1.0)
        reject = p <= cut[:, None]
    return reject.mean(axis=0)


_DRAW_CACHE: dict[int, np.ndarray] = {}


def _draws(m: int) -> np.ndarray:
    if m not in _DRAW_CACHE:
        _DRAW_CACHE[m] = np.random.default_rng([_DRAW_SEED, m]).standard_normal((DRAWS, m))
    return _DRAW_CACHE[m]


def allocation_power(relative_effect: float, mean: float, unit_variance: float, n_total: float, weights,
                     alpha: float = 0.05, correction: str = "holm") -> float | None:
    """The smallest of the comparisons' powers with n_total users split by `weights`
    (control first); None where it cannot be said."""
    shares = normalized_weights(weights)
    if shares is None or not isinstance(n_total, int | float) or not math.isfinite(n_total):
        return None
    powers = comparison_powers(relative_effect, mean, unit_variance, n_total * shares[0],
                               [n_total * s for s in shares[1:]], alpha, correction)
    return min(powers) if powers else None


def users_needed(relative_mde: float, mean: float, unit_variance: float, weights, alpha: float = 0.05,
                 power: float = 0.8, correction: str = "holm") -> int | None:
    """Users in total (all arms) for every comparison to reach the power at the MDE when
    split by `weights`; None where no sample size can."""
    sizes = needed_sizes(relative_mde, mean, unit_variance, weights, alpha, power, correction)
    return sizes[0] if sizes else None


def needed_sizes(relative_mde: float, mean: float, unit_variance: float, weights, alpha: float = 0.05,
                 power: float = 0.8, correction: str = "holm") -> tuple[int, int] | None:
    """(users in total, users in the smallest arm): N* the smallest total with which every
    comparison reaches the power, rounded up, and ⌈N*·w_min⌉. For two equal arms the
    latter is users_per_variant exactly."""
    shares = normalized_weights(weights)
    total = _total_needed(relative_mde, mean, unit_variance, shares, alpha, power, correction) if shares else None
    if total is None:
        return None
    return max(MIN_USERS, math.ceil(total - 1e-9)), max(MIN_USERS, math.ceil(total * min(shares) - 1e-9))


def _total_needed(relative_mde, mean, unit_variance, shares, alpha, power, correction) -> float | None:
    d = effect_size(relative_mde, mean, unit_variance)
    if d is None or not alpha < power < 1:
        return None
    m = len(shares) - 1
    smallest = min(shares)
    if m == 1 or correction == "none":
        # Each comparison on its own: statsmodels' control size for the treatment's ratio.
        need = 0.0
        for w in shares[1:]:
            n_c = _control_needed(d, w / shares[0], alpha, power)
            if n_c is None:
                return None
            need = max(need, n_c / shares[0])
        return need if need * smallest <= MAX_USERS else None

    def reaches(n: float) -> bool:
        p = allocation_power(relative_mde, mean, unit_variance, n, shares, alpha, correction)
        return p is not None and p >= power

    low = MIN_USERS / smallest
    if reaches(low):
        return low
    # Closed-form brackets: without a correction a comparison is tested at α (the fewest
    # users), under Bonferroni at α/m (Holm and BH never need more).
    worst = max(1 / shares[0] + 1 / s for s in shares[1:])
    with _quiet():
        lo = max(low, worst * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / d) ** 2 * 0.9)
        hi = worst * ((norm.ppf(1 - per_comparison_alpha(alpha, m, correction) / 2) + norm.ppf(power)) / d) ** 2 * 1.1
    if not (math.isfinite(hi) and hi * smallest <= MAX_USERS):
        return None
    if reaches(lo):
        hi, lo = lo, low
    while not reaches(hi):  # the brackets hold in theory; Monte Carlo error is no reason to fail
        hi *= 1.5
        if hi * smallest > MAX_USERS:
            return None
    for _ in range(200):
        if hi - lo <= max(0.25, hi * 1e-9):
            break
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def _control_needed(d: float, ratio: float, alpha: float, power: float) -> float | None:
    """The control's users for one comparison with ratio·n_c treatment users."""
    with _quiet():
        if float(NormalIndPower().power(effect_size=d, nobs1=MIN_USERS / min(1.0, ratio), alpha=alpha,
                                        ratio=ratio, alternative="two-sided")) >= power:
            return MIN_USERS / min(1.0, ratio)
        try:
            n = float(NormalIndPower().solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=ratio,
                                                   alternative="two-sided"))
        except (ValueError, RuntimeError, OverflowError, ZeroDivisionError):
            n = math.nan
        if not math.isfinite(n):
            n = float((1 + 1 / ratio) * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / d) ** 2)
    return n if math.isfinite(n) and n > 0 else None


def allocation_mde(n_control: float, n_treatments, mean: float, unit_variance: float, alpha: float = 0.05,
                   power: float = 0.8, correction: str = "holm") -> float | None:
    """The smallest relative effect every comparison detects with the given power at
    these arm sizes."""
    if effect_size(1.0, mean, unit_variance) is None or not alpha < power < 1:
        return None

    def reaches(delta: float) -> bool:
        p = comparison_powers(delta, mean, unit_variance, n_control, n_treatments, alpha, correction)
        return p is not None and min(p) >= power

    if comparison_powers(1.0, mean, unit_variance, n_control, n_treatments, alpha, correction) is None:
        return None
    lo, hi = 0.0, 1.0
    while not reaches(hi):
        hi *= 2
        if hi > 1e12:
            return None
    for _ in range(200):
        if hi - lo <= hi * 1e-6:
            break
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi
