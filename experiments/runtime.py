"""The running configuration held in process memory (core/held.py): the hot path
reads `current_config()`; a database read happens only when the held configuration is
older than ASSIGNMENT_CONFIG_CHECK_SECONDS, and then it is one indexed single-row read
of the version stamp, plus a reload if the stamp moved.
"""

from django.conf import settings

from core.held import HeldValue
from experiments.assignment import AssignmentConfig
from experiments.selectors import config_version, load_assignment_config

holder: HeldValue[AssignmentConfig] = HeldValue(
    "assignment configuration", check_seconds=lambda: settings.ASSIGNMENT_CONFIG_CHECK_SECONDS,
    version=config_version, load=load_assignment_config, version_of=lambda config: config.version)
current_config = holder.get
