"""Sample ratio mismatch: Pearson's chi-square goodness of fit of the users each
variant got against the split the experiment asked for (Kohavi, Tang and Xu 2020,
ch. 21; Fabijan et al. 2019). A p-value below 0.001 means assignment or logging is
broken, and no other number of the experiment should be trusted until it is found.
"""

from dataclasses import dataclass

from scipy import stats

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    p_value: float | None
    flagged: bool
    statistic: float | None
    observed: dict
    expected: dict

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def sample_ratio_mismatch(observed: dict[str, int], weights: dict[str, float],
                          threshold: float = SRM_THRESHOLD) -> SrmResult:
    total = sum(observed.values())
    weight_sum = sum(weights[k] for k in observed)
    expected = {k: total * weights[k] / weight_sum if weight_sum else 0.0 for k in observed}
    cells = [k for k in observed if expected[k] > 0]
    # A variant that should get nobody but got someone is a mismatch on its own.
    if any(observed[k] > 0 and expected[k] == 0 for k in observed):
        return SrmResult(0.0, True, None, dict(observed), expected)
    if total == 0 or len(cells) < 2:
        return SrmResult(None, False, None, dict(observed), expected)
    statistic = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in cells)
    p = float(stats.chi2.sf(statistic, len(cells) - 1))
    return SrmResult(p, p < threshold, float(statistic), dict(observed), expected)
