"""The statistics core, the metric kinds, the report and its readers' pure parts are pure: importing them loads
no Django (as GrowthBook's gbstats), so they run in a notebook, a simulation or another
service unchanged."""

import subprocess
import sys

from django.conf import settings

PURE = ["analysis.stats.moments", "analysis.stats.frequentist", "analysis.stats.cuped", "analysis.stats.bayesian",
        "analysis.stats.sequential", "analysis.stats.srm", "analysis.stats.power", "analysis.stats.multiple_testing",
        "analysis.metric_kinds.registry", "analysis.report", "analysis.results", "analysis.exports",
        "analysis.validation", "dashboard.presenters"]


def test_the_pure_modules_import_no_django():
    code = ("import sys\n"
            f"for name in {PURE!r}:\n"
            "    __import__(name)\n"
            "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
            "print(','.join(loaded))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=settings.BASE_DIR, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
