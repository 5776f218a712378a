"""`make run`'s process supervisor: start each child, restart one that dies (with
backoff, and say so) instead of stopping everything, stop them all in order.

The demo runs for hours on a laptop; one dead child (a worker killed by the OOM
killer, a broker hiccup) must cost seconds of that child, not the whole demo.
Pure standard library, so it is tested without Django."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from demo import processes


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    longest: float = 30.0
    # A child that ran this long before dying counts as healthy: its next restart waits `first` again.
    stable_after: float = 60.0

    def delay(self, failures_in_a_row: int) -> float:
        return min(self.longest, self.first * 2 ** max(0, failures_in_a_row - 1))


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(self, children: dict[str, list[str]], *, cwd, env: dict, say: Callable[[str], None],
                 backoff: Backoff = Backoff(), clock: Callable[[], float] = time.monotonic,
                 stdout=None):
        self.children = {name: Child(name, command) for name, command in children.items()}
        self.cwd, self.env, self.say, self.backoff, self.clock, self.stdout = cwd, env, say, backoff, clock, stdout

    def start(self, name: str) -> None:
        child = self.children[name]
        # Own session: Ctrl-C reaches only the supervisor, which then stops each child in order.
        child.proc = subprocess.Popen(child.command, cwd=self.cwd, env=self.env, start_new_session=True,
                                      stdout=self.stdout, stderr=subprocess.STDOUT if self.stdout else None)
        child.started_at, child.restart_at = self.clock(), None

    def start_all(self) -> None:
        for name in self.children:
            self.start(name)

    def add(self, name: str, command: list[str]) -> None:
        self.children[name] = Child(name, command)
        self.start(name)

    def alive(self, name: str) -> bool:
        proc = self.children[name].proc
        return proc is not None and proc.poll() is None

    def tend(self) -> None:
        """Notice children that died, and restart those whose backoff has passed."""
        now = self.clock()
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.start(child.name)
                    self.say(f"{child.name} restarted (restart {child.restarts}).")
                continue
            if child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            child.exit_codes.append(code)
            # What the dead one started (a gunicorn or Celery worker orphaned by a killed
            # master) would hold the port or the broker against its successor.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            ran = now - child.started_at
            child.failures_in_a_row = 1 if ran >= self.backoff.stable_after else child.failures_in_a_row + 1
            delay = self.backoff.delay(child.failures_in_a_row)
            child.restart_at = now + delay
            self.say(f"{child.name} exited with code {code} after {ran:.0f} s; restarting it in {delay:g} s.")

    def stop_all(self, timeout: float = 15) -> list[str]:
        """Stop every child; the names of those that had to be killed."""
        running = {child.proc: child.name for child in self.children.values() if child.proc is not None}
        return [running[proc] for proc in processes.stop(*running, timeout=timeout)]
