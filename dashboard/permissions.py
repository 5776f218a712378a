"""What a user may do on the dashboard: the API's rules, so a page never offers what
the API would refuse."""

from experiments.permissions import owns_or_admin


def can_create(user) -> bool:
    return user.has_perm("experiments.add_experiment")


def can_edit(user, experiment) -> bool:
    return user.has_perm("experiments.change_experiment") and owns_or_admin(user, experiment)


def can_run(user, experiment) -> bool:
    return user.has_perm("experiments.run_experiment") and owns_or_admin(user, experiment)


def can_analyze(user) -> bool:
    return user.has_perm("analysis.add_analysisreport")
