"""Fixed-horizon tests of a treatment against its baseline.

absolute lift  Δ = v_t − v_c, se² = Var(v_t) + Var(v_c)
relative lift  Δ / v_c, with the delta method's
               Var ≈ Var(v_t)/v_c² + v_t²·Var(v_c)/v_c⁴  (Kohavi, Tang and Xu 2020, §18.4)
The metric's kind chooses the test by its degrees of freedom: a mean metric uses
Welch's t with the Welch–Satterthwaite degrees of freedom (`welch_df`); a proportion
and a ratio use the normal distribution (Wald z-test, infinite degrees of freedom).
"""

import math
from dataclasses import dataclass

from scipy import special

from analysis.stats.moments import MetricValue


@dataclass(frozen=True)
class Comparison:
    absolute_lift: float
    absolute_se: float
    absolute_ci_low: float
    absolute_ci_high: float
    relative_lift: float
    relative_se: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float  # inf for a z-test

    def as_dict(self) -> dict:
        return {k: _finite(v) for k, v in self.__dict__.items()}


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def welch_df(t: MetricValue, c: MetricValue) -> float:
    vt, vc = t.variance, c.variance
    denominator = (vt**2 / (t.n - 1) if t.n > 1 else 0.0) + (vc**2 / (c.n - 1) if c.n > 1 else 0.0)
    return (vt + vc) ** 2 / denominator if denominator > 0 else float("inf")


def compare(treatment: MetricValue, control: MetricValue, alpha: float = 0.05) -> Comparison:
    """Test treatment against control at level alpha (two-sided)."""
    nan = float("nan")
    if treatment.n < 2 or control.n < 2 or not math.isfinite(treatment.value) or not math.isfinite(control.value):
        return Comparison(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    diff = treatment.value - control.value
    # A quadratic form that is zero in exact arithmetic can round to -5e-16 (the delta
    # method's, with one user per arm): zero, not a crash.
    se = math.sqrt(max(treatment.variance + control.variance, 0.0))
    df = treatment.kind.degrees_of_freedom(treatment, control)
    # scipy.special's distribution functions: the same numbers as scipy.stats.t and
    # norm, without building a distribution object per comparison.
    if math.isfinite(df):
        q = float(special.stdtrit(df, 1 - alpha / 2))
        two_sided = lambda z: float(2 * special.stdtr(df, -abs(z)))  # noqa: E731
    else:
        q = float(special.ndtri(1 - alpha / 2))
        two_sided = lambda z: float(2 * special.ndtr(-abs(z)))  # noqa: E731
    if se > 0 and math.isfinite(se):
        statistic = diff / se
        p = two_sided(statistic)
    else:
        # No variance in either arm (every user alike, or a rounding artefact): there is
        # nothing to test, and a zero-width interval must not read as a certain effect.
        statistic = p = nan
    rel, rel_se = relative_lift(treatment, control)
    low, high = fieller_relative(treatment.value, treatment.variance, control.value, control.variance, q)
    if treatment.value >= 0 and control.value >= 0:
        low = max(low, -1.0)  # a rate or a count falls by 100% at most
    if not math.isfinite(p):
        # Untested (no variance): no interval either, rather than a zero-width one that
        # would read as a certain effect beside "not significant".
        low = high = nan
    return Comparison(
        absolute_lift=diff, absolute_se=se,
        absolute_ci_low=diff - q * se if math.isfinite(p) else nan,
        absolute_ci_high=diff + q * se if math.isfinite(p) else nan,
        relative_lift=rel, relative_se=rel_se, ci_low=low, ci_high=high,
        p_value=p, statistic=statistic, df=df,
    )


def fieller_relative(x_t: float, v_t: float, x_c: float, v_c: float, q: float) -> tuple[float, float]:
    """Fieller's interval for x_t / x_c − 1 (independent arms, estimate variances v_t, v_c,
    quantile q): the θ with (x_t − θ·x_c)² ≤ q²·(v_t + θ²·v_c). At θ = 1 that inequality is
    the absolute test itself, so the interval excludes 0 exactly when the test rejects:
    the relative interval can never contradict the verdict (the delta method's could).
    Unbounded when the control is not itself distinguishable from 0 (x_c² ≤ q²·v_c): nan.
    Fieller (1954); Franz (2007), "Ratios: a short guide to confidence limits"."""
    a = x_c * x_c - q * q * v_c
    if not (a > 0) or not all(math.isfinite(x) for x in (x_t, v_t, x_c, v_c, q)):
        return float("nan"), float("nan")
    root = math.sqrt(max(x_t * x_t * v_c + x_c * x_c * v_t - q * q * v_t * v_c, 0.0))
    low, high = sorted(((x_t * x_c - q * root) / a, (x_t * x_c + q * root) / a))
    return low - 1.0, high - 1.0


def relative_lift(treatment: MetricValue, control: MetricValue) -> tuple[float, float]:
    """(v_t / v_c − 1, its delta-method standard error); nan when the control is 0."""
    vc = control.value
    if vc == 0 or not math.isfinite(vc):
        return float("nan"), float("nan")
    rel = treatment.value / vc - 1.0
    var = treatment.variance / vc**2 + treatment.value**2 * control.variance / vc**4
    return rel, math.sqrt(max(var, 0.0))
