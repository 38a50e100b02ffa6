"""SIGINT / SIGTERM to `eval` (issue 21, item 8): real signals to a real `python main.py eval`
process. The run stops its workers, keeps what finished (whole files, no .part), prints one line
and exits 130 / 143; no worker and no multiprocessing resource tracker outlives it (the process
table, read from /proc, before and after)."""

import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, shared_path
from tests.test_eval_scale import FRAMES, TRACKERS, _descendants

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for a reaper counts as gone: it holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])


def _interrupt_after_first_job(tmp_path, args, sig):
    """Start eval, wait for its first finished job (its progress line), note every process below
    it, send `sig` to it alone; returns (exit code, stderr, the processes noted)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "eval",
            shared_path("bench"),
            "--trackers",
            TRACKERS,
            "--max-frames",
            FRAMES,
            "--results",
            str(tmp_path),
        ]
        + args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )
    lines, below = [], []
    try:
        for line in proc.stderr:
            lines.append(line)
            if " 1/4 jobs" in line:
                below = _descendants(proc.pid)
                proc.send_signal(sig)
                break
        _, rest = proc.communicate(timeout=120)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines), below


def _gone(pids, within: float = 20.0) -> list:
    """The pids still running once `within` seconds have passed (polled: a resource tracker ends
    when it reads the end of its pipe, a moment after the last holder exits)."""
    deadline = time.monotonic() + within
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _check_written(tmp_path):
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if ".part" in p.name], files
    boxes = [p for p in files if p.suffix == ".txt" and not p.name.endswith("_time.txt")]
    assert 1 <= len(boxes) < 4
    for p in boxes:
        assert len(p.read_text().splitlines()) == int(FRAMES), p
    return len(boxes)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pool_eval_stopped_by_a_signal_leaves_no_process(tmp_path, sig):
    rc, err, below = _interrupt_after_first_job(tmp_path, ["--workers", "2"], sig)
    workers = [p for p, cmd in below if "spawn_main" in cmd]
    trackers = [p for p, cmd in below if "resource_tracker" in cmd]
    assert len(workers) == 2 and trackers, f"the run had no pool to stop: {below}"
    assert rc == 128 + sig, err
    name = signal.Signals(sig).name
    line = [line for line in err.splitlines() if line.startswith(f"eval interrupted by {name}")]
    assert len(line) == 1 and "written to" in line[0] and "Traceback" not in err, err
    done = _check_written(tmp_path)
    assert f": {done} of 4 jobs finished" in line[0]
    left = _gone([p for p, _ in below])
    assert not left, f"still running after eval exited: {[c for p, c in below if p in left]}"


def test_plain_eval_sigterm_prints_its_line(tmp_path):
    rc, err, _ = _interrupt_after_first_job(tmp_path, ["--threads", "1"], signal.SIGTERM)
    assert rc == 143, err
    assert "eval interrupted by SIGTERM: 1 of 4 jobs finished, written to" in err, err
    assert "Traceback" not in err
    assert _check_written(tmp_path) == 1


def _catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for sig installed (/proc's SigCgt mask)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = int(next(line for line in f if line.startswith("SigCgt:")).split()[1], 16)
    except (OSError, StopIteration):
        return False
    return bool(mask >> (sig - 1) & 1)


def test_eval_sigterm_while_it_loads_says_so(tmp_path):
    """SIGTERM as soon as eval handles it (its handler is installed: a real condition read from /proc),
    i.e. while it loads its trackers and sequences: one line, 143, not a silent kill."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "eval",
            shared_path("bench"),
            "--trackers",
            TRACKERS,
            "--max-frames",
            FRAMES,
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )
    try:
        deadline = time.monotonic() + 120
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "eval interrupted by SIGTERM" in err and "Traceback" not in err, err
