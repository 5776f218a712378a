"""Non-inferiority test of a guardrail: is the treatment worse than its baseline by
less than a relative margin M? (Schuirmann 1987; Chow, Shao and Wang, "Sample Size
Calculations in Clinical Research", §3.2; Eppo's and GrowthBook's guardrails.)

With θ = 1 + M when lower is better (the treatment may reach (1 + M)·control) and
θ = 1 − M when higher is better, the null hypothesis is "worse by the margin or more":

    lower is better   H0: μ_t ≥ θ·μ_c   against  H1: μ_t < θ·μ_c
    higher is better  H0: μ_t ≤ θ·μ_c   against  H1: μ_t > θ·μ_c

    statistic  T = (x̄_t − θ·x̄_c) / √(Var(x̄_t) + θ²·Var(x̄_c)),  p one-sided,

with the metric kind's distribution (Welch's t for a mean, with the Welch–Satterthwaite
degrees of freedom of the treatment against the control scaled by θ; z otherwise): the
same test as scipy's `ttest_ind(x_t, θ·x_c, equal_var=False, alternative=...)` on raw data.

The bound shown is Fieller's one-sided (1 − α) confidence bound of x_t/x_c − 1 (at the
same quantile), on the harmful side. The test rejects exactly when that bound is inside
the margin (at θ the Fieller inequality is the test itself), so the verdict and the
bound beside it cannot disagree.
"""

import math
from dataclasses import dataclass

from scipy import special

from analysis.stats.frequentist import fieller_relative
from analysis.stats.moments import MetricValue


@dataclass(frozen=True)
class NonInferiority:
    margin: float
    bound: float  # one-sided bound of the relative lift on the harmful side; nan: none
    p_value: float  # nan: not tested
    within_margin: bool


def non_inferiority(treatment: MetricValue, control: MetricValue, margin: float, higher_is_better: bool,
                    alpha: float = 0.05) -> NonInferiority:
    nan = float("nan")
    untested = NonInferiority(margin, nan, nan, False)
    usable = all(math.isfinite(x) for x in (treatment.value, control.value, treatment.variance, control.variance))
    if treatment.n < 2 or control.n < 2 or not usable or control.value <= 0 or not math.isfinite(margin):
        return untested  # a relative margin needs a positive baseline
    theta = 1.0 - margin if higher_is_better else 1.0 + margin
    scaled = MetricValue(control.kind, control.n, theta * control.value, theta**2 * control.unit_variance,
                         control.gradient)
    se = math.sqrt(max(treatment.variance + scaled.variance, 0.0))
    if not (se > 0) or not math.isfinite(se):
        return untested  # no variance: nothing to test (as the two-sided test says)
    df = treatment.kind.degrees_of_freedom(treatment, scaled)
    statistic = (treatment.value - scaled.value) / se
    if math.isfinite(df):
        q = float(special.stdtrit(df, 1 - alpha))
        lower_tail = float(special.stdtr(df, statistic))
    else:
        q = float(special.ndtri(1 - alpha))
        lower_tail = float(special.ndtr(statistic))
    p = 1.0 - lower_tail if higher_is_better else lower_tail
    low, high = fieller_relative(treatment.value, treatment.variance, control.value, control.variance, q)
    bound = low if higher_is_better else high
    if higher_is_better and math.isfinite(bound):
        bound = max(bound, -1.0)  # a non-negative metric falls by 100% at most
    within = math.isfinite(bound) and (bound > -margin if higher_is_better else bound < margin)
    return NonInferiority(margin, bound, p, within)
