"""The product's Celery app (with everything config/celery_app.py does to it) plus
one task that holds its message for a while: a worker started with
`-A tests.core.celery_probe` has a late-acked task in flight when a test breaks the
broker connection."""

import time
from pathlib import Path

from config.celery_app import app


@app.task(name="tests.hold_then_mark", acks_late=True, reject_on_worker_lost=True)
def hold_then_mark(marker: str, seconds: float) -> None:
    Path(f"{marker}.started").touch()
    time.sleep(seconds)
    Path(f"{marker}.done").touch()
