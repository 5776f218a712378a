"""Always-valid inference: a normal-mixture confidence sequence tuned to the planned
sample size (Howard, Ramdas, McAuliffe and Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", eq. (14); GrowthBook's "asymptotic confidence
sequence"), read as a running minimum p-value and a running intersection of intervals.

For an estimate θ̂ ~ N(θ, V) and a normal mixing distribution N(0, τ²) over the
alternative, the mixture likelihood ratio against θ = θ0 is (mSPRT; Johari, Koomen,
Pekelis and Walsh 2017; Robbins 1970)

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²)))

a martingale under the null, so P(Λ ever exceeds 1/α) ≤ α (Ville's inequality). The
confidence sequence is the set of θ0 with Λ < 1/α:

    θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)))

Tuning (`tuned_mixture_variance`): with V_N the estimate's variance at the planned size N,
τ² = c · V_N, c = −2 log α + log(1 − 2 log α), the width is smallest at N. Writing
nρ² = τ²/V this is GrowthBook's formula with ρ² = c/N:

    θ̂ ± se · sqrt( 2 (nρ² + 1) / (nρ²) · log( sqrt(nρ² + 1) / α ) )

Pinpoint plans N as the fixed-horizon size for the experiment's minimum detectable
effect (relative) at 80% power: V_N = (MDE / (z_{1−α/2} + z_{0.8}))², fixed before the
first look (a mixture that moved with the data would void Ville's bound).

Across looks, `running` keeps p_t = min_{s≤t} p_s and the interval ∩_{s≤t} CS_s, both
valid at any stopping time since the whole sequence is; then "p < α" ⟺ "the interval
excludes 0" at every look, and a result once significant stays significant.
"""

import math
from dataclasses import dataclass

from scipy.stats import norm

PLANNED_POWER = 0.8


@dataclass(frozen=True)
class SequentialResult:
    p_value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


_NAN = SequentialResult(float("nan"), float("nan"), float("nan"))


def msprt(estimate: float, variance: float, tau: float, alpha: float = 0.05, null: float = 0.0) -> SequentialResult:
    """One look of the mixture test with mixing standard deviation `tau`."""
    if not (math.isfinite(estimate) and math.isfinite(variance) and math.isfinite(tau)) or variance <= 0 or tau <= 0:
        return _NAN
    t2 = tau * tau
    ratio = variance / (variance + t2)
    log_lr = 0.5 * math.log(ratio) + t2 * (estimate - null) ** 2 / (2 * variance * (variance + t2))
    p = 1.0 if log_lr <= 0 else math.exp(-log_lr)
    half = math.sqrt(variance * (variance + t2) / t2 * (2 * math.log(1 / alpha) - math.log(ratio)))
    if not math.isfinite(half):
        return _NAN
    return SequentialResult(min(1.0, p), estimate - half, estimate + half)


def tuning_constant(alpha: float) -> float:
    """c = −2 log α + log(1 − 2 log α): nρ² at the planned size (Howard et al. 2021, §3.5)."""
    return -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))


def planned_variance(mde: float, alpha: float = 0.05, power: float = PLANNED_POWER) -> float:
    """The relative lift's variance at the fixed-horizon size for `mde` at `power`."""
    return (mde / (norm.ppf(1 - alpha / 2) + norm.ppf(power))) ** 2


def tuned_mixture_variance(mde: float, alpha: float = 0.05) -> float:
    """τ² = c · V_N: the mixture whose boundary is tightest at the planned size."""
    return tuning_constant(alpha) * planned_variance(mde, alpha)


def confidence_sequence(estimate: float, variance: float, mde: float, alpha: float = 0.05) -> SequentialResult:
    """One look of the confidence sequence tuned to the size planned for `mde`."""
    if not (math.isfinite(mde) and mde > 0):
        return _NAN
    return msprt(estimate, variance, math.sqrt(tuned_mixture_variance(mde, alpha)), alpha)


def running(previous: SequentialResult | None, look: SequentialResult) -> SequentialResult:
    """This look combined with the running values before it: the minimum p-value and the
    intersection of the intervals. An empty intersection (the sequence's estimates moved
    further apart than the intervals allow: probability at most α under the model) has no
    interval to show (None), and its p-value is below α."""
    if previous is None or not _finite(previous.p_value):
        return look
    if not _finite(look.p_value):
        return previous
    p = min(previous.p_value, look.p_value)
    low, high = float("nan"), float("nan")
    if _finite(previous.ci_low) and _finite(previous.ci_high):  # else the past intersection was empty: it stays so
        low, high = max(previous.ci_low, look.ci_low), min(previous.ci_high, look.ci_high)
        if not low <= high:
            low = high = float("nan")
    return SequentialResult(p, low, high)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)
