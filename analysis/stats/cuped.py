"""CUPED: regression adjustment on a pre-experiment covariate (Deng, Xu, Kohavi and
Walker 2013).

Each user's metric (post) is paired with the same metric measured over a period
before their first exposure (pre). With θ the pooled within-variant regression slope
of post on pre, a variant's adjusted value is

    v_adj = v_post − θ · (v_pre − v_pre_pooled)

and its variance shrinks by the factor (1 − ρ²), ρ the post/pre correlation. For a
mean metric this is exactly the treatment coefficient of the OLS fit
post ~ variant dummies + pre. For a ratio metric post and pre are each linearised by
the delta method first (their gradients), as GrowthBook does for ratio metrics.
Randomisation makes v_pre equal in expectation across variants, so the adjustment
removes noise without adding bias.
"""

from dataclasses import dataclass

import numpy as np

from analysis.stats.moments import Kind, MetricValue, Moments


@dataclass(frozen=True)
class CupedResult:
    theta: float
    adjusted: tuple[MetricValue, ...]
    unadjusted: tuple[MetricValue, ...]

    def variance_reduction(self, i: int) -> float:
        before = self.unadjusted[i].unit_variance
        return 1.0 - self.adjusted[i].unit_variance / before if before > 0 else 0.0


def cuped(kind: Kind, variants: list[Moments], post_idx, pre_idx) -> CupedResult:
    """Adjust every variant's value of one metric by its pre-period covariate.

    `variants[v]` holds the moments of the metric's post variables (indices post_idx)
    and pre variables (pre_idx), with their cross products.
    """
    post_idx, pre_idx = list(post_idx), list(pre_idx)
    both = post_idx + pre_idx
    k = len(post_idx)
    parts = []
    for m in variants:
        sub = m.select(both)
        post = kind.value(sub.select(range(k)))
        pre = kind.value(sub.select(range(k, 2 * k)))
        cov = sub.covariance
        g, h = np.asarray(post.gradient), np.asarray(pre.gradient)
        vx, cxy = float(h @ cov[k:, k:] @ h), float(g @ cov[:k, k:] @ h)
        if not (np.isfinite(vx) and np.isfinite(cxy) and np.isfinite(pre.value)):
            # No usable covariate for this variant (a ratio whose pre-period denominator
            # is 0): it is left unadjusted and out of θ's estimate.
            vx, cxy, pre = 0.0, 0.0, None
        parts.append((m.n, post, pre, float(g @ cov[:k, :k] @ g), vx, cxy))
    sxy = sum((n - 1) * c for n, *_, c in parts if n > 1)
    sxx = sum((n - 1) * vx for n, _, _, _, vx, _ in parts if n > 1)
    theta = sxy / sxx if sxx > 0 else 0.0
    pooled = variants[0].select(pre_idx)
    for m in variants[1:]:
        pooled = pooled + m.select(pre_idx)
    pre_pooled = kind.value(pooled).value
    adjusted = []
    for n, post, pre, vy, vx, cxy in parts:
        usable = pre is not None and np.isfinite(pre_pooled)
        value = post.value - theta * (pre.value - pre_pooled) if usable else post.value
        unit_var = max(vy + theta**2 * vx - 2 * theta * cxy, 0.0) if usable else vy
        adjusted.append(MetricValue(kind, n, float(value), float(unit_var), post.gradient))
    # The unadjusted values on the same (ddof=1) footing, for the variance reduction.
    unadjusted = tuple(MetricValue(kind, n, post.value, vy, post.gradient) for n, post, _, vy, _, _ in parts)
    return CupedResult(theta=float(theta), adjusted=tuple(adjusted), unadjusted=unadjusted)
