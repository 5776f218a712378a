"""Always-valid inference with the mixture sequential probability ratio test (mSPRT;
Johari, Koomen, Pekelis and Walsh 2017, "Peeking at A/B tests"; Robbins 1970).

For an estimate θ̂ ~ N(θ, V) and a normal mixing distribution N(0, τ²) over the
alternative, the likelihood ratio against θ = θ0 is

    Λ = sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ0)² / (2 V (V + τ²)))

and, because Λ is a martingale under the null, P(Λ ever exceeds 1/α) ≤ α (Ville's
inequality). So p = min(1, 1/Λ) is valid at whatever look one stops at, and the
confidence sequence is the set of θ0 with Λ < 1/α:

    θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)))

p < α exactly when the interval excludes 0. τ is the effect size the test is tuned to
detect fastest; Pinpoint uses the experiment's minimum detectable effect.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SequentialResult:
    p_value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


def msprt(estimate: float, variance: float, tau: float, alpha: float = 0.05, null: float = 0.0) -> SequentialResult:
    nan = float("nan")
    if not (math.isfinite(estimate) and math.isfinite(variance)) or variance <= 0 or tau <= 0:
        return SequentialResult(nan, nan, nan)
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + t2 * (estimate - null) ** 2 / (2 * variance * (variance + t2))
    p = 1.0 if log_lr <= 0 else math.exp(-log_lr)
    half = math.sqrt(variance * (variance + t2) / t2 * (2 * math.log(1 / alpha) + math.log((variance + t2) / variance)))
    return SequentialResult(min(1.0, p), estimate - half, estimate + half)
