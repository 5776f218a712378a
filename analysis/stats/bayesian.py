"""Chance to beat control, from a normal approximation to the relative lift.

With the relative lift's estimate r and standard error s (delta method), and a normal
prior N(μ0, σ0²) on the true lift, the posterior is normal with precision 1/s² + 1/σ0²
and mean (r/s² + μ0/σ0²) / precision (a flat prior: σ0 = ∞, the posterior is N(r, s²)),
as in GrowthBook's Bayesian engine. The chance to beat control is P(lift > 0), or
P(lift < 0) when lower is better; the expected loss is what choosing the treatment
costs, in lift, averaged over the worlds where it is worse.
"""

import math
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class BayesianResult:
    chance_to_beat_control: float
    posterior_mean: float
    posterior_sd: float
    credible_low: float
    credible_high: float
    expected_loss: float

    def as_dict(self) -> dict:
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


def chance_to_beat(relative_lift: float, se: float, higher_is_better: bool = True, prior_mean: float = 0.0,
                   prior_sd: float | None = None, interval: float = 0.95) -> BayesianResult:
    nan = float("nan")
    if not (math.isfinite(relative_lift) and math.isfinite(se)) or se <= 0:
        return BayesianResult(nan, nan, nan, nan, nan, nan)
    precision = 1 / se**2
    weighted = relative_lift / se**2
    if prior_sd:
        precision += 1 / prior_sd**2
        weighted += prior_mean / prior_sd**2
    mean, sd = weighted / precision, math.sqrt(1 / precision)
    sign = 1.0 if higher_is_better else -1.0
    chance = float(stats.norm.cdf(sign * mean / sd))
    z = float(stats.norm.ppf(0.5 + interval / 2))
    # E[max(0, −sign·lift)] for a normal: the loss if the treatment is in fact worse.
    m = -sign * mean
    loss = float(m * stats.norm.cdf(m / sd) + sd * stats.norm.pdf(m / sd))
    return BayesianResult(chance, mean, sd, mean - z * sd, mean + z * sd, loss)
