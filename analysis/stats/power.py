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
    users_per_variant: int | None
    users_per_variant_now: int
    users_per_variant_per_day: float
    days_needed: float | None
    days_remaining: float | None
    mde_now: float | None
    power_now: float | None

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


def plan(relative_mde: float, mean: float, unit_variance: float, n_now: int, days_running: float,
         alpha: float = 0.05, power: float = 0.8) -> PowerPlan:
    """The sample size the MDE needs, and how long the current traffic takes to reach it."""
    needed = users_per_variant(relative_mde, mean, unit_variance, alpha, power)
    per_day = n_now / days_running if days_running > 0 else 0.0
    days = needed / per_day if needed and per_day > 0 and math.isfinite(per_day) else None
    remaining = max(0.0, days - days_running) if days is not None else None
    return PowerPlan(relative_mde, needed, n_now, per_day, days, remaining,
                     detectable_effect(n_now, mean, unit_variance, alpha, power),
                     power_at(relative_mde, n_now, mean, unit_variance, alpha))
