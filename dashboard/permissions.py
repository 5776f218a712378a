"""What a user may do on the dashboard: the API's rules, so a page never offers what
the API would refuse."""

from accounts.roles import ADMIN, roles_of


def can_create(user) -> bool:
    return user.has_perm("experiments.add_experiment")


def owns_or_admin(user, experiment) -> bool:
    return user.is_superuser or experiment.owner_id == user.id or ADMIN in roles_of(user)


def can_edit(user, experiment) -> bool:
    return user.has_perm("experiments.change_experiment") and owns_or_admin(user, experiment)


def can_run(user, experiment) -> bool:
    return user.has_perm("experiments.run_experiment") and owns_or_admin(user, experiment)


def can_analyze(user) -> bool:
    return user.has_perm("analysis.add_analysisreport")
