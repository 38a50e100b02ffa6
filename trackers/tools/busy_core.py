"""A busy core on demand, for the speed figures under load (`bench --load`, `bench --gui --load`):
one extra process spinning a core, as a desktop's other work does, switched on for the loaded rounds
and off for the idle ones, which alternate so a drift in the machine's own load falls on both alike.
"""

from __future__ import annotations

import os


def start_busy_process():
    """One process that keeps a core busy (`while True: pass`), as a desktop's other work does."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class BusyCore:
    """The busy process of `bench --load`, started once and switched on and off with SIGCONT /
    SIGSTOP (a stopped process takes no CPU), so a loaded round starts loaded at once and an idle
    round is idle; killed on exit whatever happens. Each switch returns once the kernel reports the
    process stopped / continued (so on() and off() must alternate: a second SIGSTOP to a stopped
    process is never reported)."""

    def __enter__(self):
        self.process = start_busy_process()
        self.off()
        return self

    def _signal(self, sig: int, wait_for: int) -> None:
        os.kill(self.process.pid, sig)
        os.waitpid(self.process.pid, wait_for)

    def on(self) -> None:
        import signal

        self._signal(signal.SIGCONT, os.WCONTINUED)

    def off(self) -> None:
        import signal

        self._signal(signal.SIGSTOP, os.WUNTRACED)

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def alternate_rounds(rounds: int, busy: BusyCore, run) -> dict:
    """`run()` -> fps, `rounds` times idle and `rounds` times with the busy core on, alternating
    (idle first in even rounds, loaded first in odd ones, so a drift in the machine's own load
    over the run falls on both alike). Returns {"idle": [fps...], "loaded": [fps...]}."""
    figures = {"idle": [], "loaded": []}
    for r in range(rounds):
        for condition in ("idle", "loaded") if r % 2 == 0 else ("loaded", "idle"):
            if condition == "idle":
                figures[condition].append(run())
                continue
            busy.on()
            try:
                figures[condition].append(run())
            finally:
                busy.off()
    return figures
