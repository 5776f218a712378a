"""The interleaving preference test (Chapelle, Joachims, Radlinski and Yue 2012). Pure.

Every user with a credited engagement scores s = +1 when more of their engagements
went to the treatment team's items, −1 when more went to the control's, 0 on a tie.
The statistic is the mean score,

    Δ = (users preferring treatment − users preferring control) / users with a credited engagement,

tested with a one-sample t-test of the scores against 0. Users are independent and the
score is bounded, so the t-test is sound from a few dozen users on; its sufficient
statistics are three counts (n = wins_t + wins_c + ties, Σs = wins_t − wins_c,
Σs² = wins_t + wins_c), which is what the SQL returns. A bootstrap over users would
resample the same three counts and give the same interval to within its own noise,
at a thousand times the cost.

Below `MIN_USERS` users with a preference or a tie no verdict is given: the scores'
mean is not yet near normal, and one user can swing Δ by several points.
"""

import math
from dataclasses import dataclass

from scipy import special

MIN_USERS = 30


@dataclass(frozen=True)
class PreferenceCounts:
    """Per experiment (or per day, cumulative): users by which team they preferred."""

    wins_control: int
    wins_treatment: int
    ties: int
    uncredited: int = 0  # engagements that could not be credited to a team (no request, unknown position)

    @property
    def users(self) -> int:
        return self.wins_control + self.wins_treatment + self.ties


@dataclass(frozen=True)
class PreferenceTest:
    users: int
    delta: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    enough_data: bool
    more_users: int | None  # users with a credited engagement still needed before a verdict


def preference_test(counts: PreferenceCounts, alpha: float = 0.05, min_users: int = MIN_USERS) -> PreferenceTest:
    n = counts.users
    if n == 0:
        return PreferenceTest(0, None, None, None, None, None, False, False, min_users)
    delta = (counts.wins_treatment - counts.wins_control) / n
    if n < max(min_users, 2):
        return PreferenceTest(n, delta, None, None, None, None, False, False, max(min_users, 2) - n)
    sum_sq = counts.wins_treatment + counts.wins_control
    variance = max(sum_sq - n * delta * delta, 0.0) / (n - 1)
    std_error = math.sqrt(variance / n)
    q = float(special.stdtrit(n - 1, 1 - alpha / 2))
    if std_error > 0:
        p = float(2 * special.stdtr(n - 1, -abs(delta / std_error)))
    else:
        # Every user scored alike: all ties (nothing to prefer, p = 1) or all one way
        # (the t statistic is infinite: p = 0, and the interval is the single point).
        p = 1.0 if delta == 0 else 0.0
    low, high = delta - q * std_error, delta + q * std_error
    # The verdict is read off the interval shown, so the two can never disagree.
    significant = low > 0 or high < 0
    return PreferenceTest(n, delta, std_error, max(low, -1.0), min(high, 1.0), p, significant, True, None)


def winner(test: PreferenceTest, control: str, treatment: str) -> str | None:
    if not test.significant or test.delta is None:
        return None
    return treatment if test.delta > 0 else control


def users_for_power(delta: float, score_variance: float, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Users with a credited engagement needed to find Δ ≠ 0 with this power (normal approximation)."""
    if not delta or score_variance <= 0:
        return None
    z = float(special.ndtri(1 - alpha / 2) + special.ndtri(power))
    return z * z * score_variance / (delta * delta)
