"""`serve`'s supervisor: a child that dies is restarted after a backoff, and said so;
the others run on; stopping asks each child first and kills only a stubborn one."""

import sys
import time

from demo.supervisor import Backoff, Supervisor

DIES = [sys.executable, "-c", "import sys, time; time.sleep(0.2); sys.exit(3)"]
RUNS = [sys.executable, "-c", "import time; time.sleep(60)"]
STUBBORN = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
            "time.sleep(60)"]


def _supervisor(children, said, **kwargs):
    return Supervisor(children, cwd=".", env={}, say=said.append, **kwargs)


def _tend_until(supervisor, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        supervisor.tend()
        time.sleep(0.05)
    assert predicate()


def test_backoff_doubles_up_to_its_longest_wait():
    backoff = Backoff(first=1, longest=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_dies_is_restarted_with_backoff_while_the_others_run_on():
    said = []
    supervisor = _supervisor({"flaky": DIES, "steady": RUNS}, said, backoff=Backoff(first=0.2, longest=0.4))
    supervisor.start_all()
    steady = supervisor.children["steady"].proc
    try:
        _tend_until(supervisor, lambda: supervisor.children["flaky"].restarts >= 3)
        flaky = supervisor.children["flaky"]
        assert flaky.exit_codes[:3] == [3, 3, 3]
        assert any("flaky exited with code 3" in line and "restarting it in 0.2 s" in line for line in said)
        assert "flaky restarted (restart 1)." in said
        # Died quickly each time: the waits grew, capped at the longest.
        assert flaky.failures_in_a_row >= 3
        assert supervisor.children["steady"].proc is steady and steady.poll() is None
    finally:
        assert supervisor.stop_all() == []
    assert steady.poll() is not None


def test_stopping_kills_only_a_child_that_ignores_the_request(tmp_path):
    out = open(tmp_path / "out", "wb")  # noqa: SIM115
    supervisor = Supervisor({"stubborn": STUBBORN, "polite": RUNS}, cwd=".", env={}, say=print, stdout=out)
    supervisor.start_all()
    deadline = time.monotonic() + 10
    while b"up" not in (tmp_path / "out").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert supervisor.stop_all(timeout=1) == ["stubborn"]
    assert time.monotonic() - started < 5
    assert all(child.proc.poll() is not None for child in supervisor.children.values())
    out.close()
