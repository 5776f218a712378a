"""Corrections for looking at many comparisons at once.

holm: Holm–Bonferroni step-down, which controls the family-wise error rate (the
chance of any false positive) in every dependence structure; Pinpoint's default
across variants × metrics, because a PM reads each significant row as a finding.
bh: Benjamini–Hochberg step-up, which controls the false discovery rate; for
exploratory reads (many segments).
"""

import math

METHODS = ("holm", "bh", "none")


def adjust(p_values: list[float | None], method: str = "holm") -> list[float | None]:
    """Adjusted p-values in the input order; None (a comparison that could not be
    made) stays None and does not count toward the family."""
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r}; expected one of {', '.join(METHODS)}")
    idx = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    m = len(idx)
    if m == 0:
        return out
    if method == "none":
        for i in idx:
            out[i] = p_values[i]
        return out
    order = sorted(idx, key=lambda i: p_values[i])
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            out[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p_values[i] / (rank + 1))
            out[i] = min(1.0, running)
    return out
