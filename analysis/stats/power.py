"""Power, minimum detectable effect and duration (statsmodels.stats.power).

For a metric with control value μ and per-user variance σ² (the delta method's for a
ratio), a relative effect δ is Cohen's d = δ·|μ| / σ, and a two-sided z-test with
n users in each of two arms has power Φ(d·sqrt(n/2) − z_{1−α/2}) (+ the other tail).
"""

import math
from dataclasses import dataclass

from statsmodels.stats.power import NormalIndPower


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


def effect_size(relative_mde: float, mean: float, unit_variance: float) -> float:
    return relative_mde * abs(mean) / math.sqrt(unit_variance)


def users_per_variant(relative_mde: float, mean: float, unit_variance: float, alpha: float = 0.05,
                      power: float = 0.8) -> int | None:
    """Users each variant needs to detect a relative effect with the given power."""
    if not (unit_variance > 0 and mean and relative_mde > 0):
        return None
    n = NormalIndPower().solve_power(effect_size=effect_size(relative_mde, mean, unit_variance), nobs1=None,
                                     alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
    return math.ceil(float(n))


def detectable_effect(n_per_variant: float, mean: float, unit_variance: float, alpha: float = 0.05,
                      power: float = 0.8) -> float | None:
    """The smallest relative effect n users per variant detect with the given power."""
    if not (unit_variance > 0 and mean and n_per_variant >= 2):
        return None
    d = NormalIndPower().solve_power(effect_size=None, nobs1=n_per_variant, alpha=alpha, power=power,
                                     ratio=1.0, alternative="two-sided")
    return float(d) * math.sqrt(unit_variance) / abs(mean)


def power_at(relative_effect: float, n_per_variant: float, mean: float, unit_variance: float,
             alpha: float = 0.05) -> float | None:
    if not (unit_variance > 0 and mean and n_per_variant >= 2):
        return None
    return float(NormalIndPower().power(effect_size=effect_size(relative_effect, mean, unit_variance),
                                        nobs1=n_per_variant, alpha=alpha, ratio=1.0, alternative="two-sided"))


def plan(relative_mde: float, mean: float, unit_variance: float, n_now: int, days_running: float,
         alpha: float = 0.05, power: float = 0.8) -> PowerPlan:
    """The sample size the MDE needs, and how long the current traffic takes to reach it."""
    needed = users_per_variant(relative_mde, mean, unit_variance, alpha, power)
    per_day = n_now / days_running if days_running > 0 else 0.0
    days = needed / per_day if needed and per_day > 0 else None
    remaining = max(0.0, days - days_running) if days is not None else None
    return PowerPlan(relative_mde, needed, n_now, per_day, days, remaining,
                     detectable_effect(n_now, mean, unit_variance, alpha, power),
                     power_at(relative_mde, n_now, mean, unit_variance, alpha))
