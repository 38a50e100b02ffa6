"""Evaluation scaled out: the same sequence x tracker jobs in local processes and on Ray give the
same boxes as the single-process run on ../shared/bench, and a worker killed mid-run (SIGKILL, a
real process) loses nothing.

The Ray tests run in the suite when `ray` is installed (the optional extra: pip install -e
'.[ray]') and are skipped, saying so, when it is not; CI's default install leaves it out (Ray is
~200 MB and starting it takes ~10 s), and `.ci/ray` is the optional job that installs the extra
and runs this file."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, shared_path
from trackers.tools.cli import main

TRACKERS = "csrt,effnet-siamfc-floor"
FRAMES = "40"
pytestmark = pytest.mark.slow


def _boxes_files(res):
    out = {}
    for tracker in sorted(os.listdir(res)):
        for f in sorted(os.listdir(os.path.join(res, tracker))):
            if f.endswith(".txt") and not f.endswith("_time.txt"):
                with open(os.path.join(res, tracker, f)) as fh:
                    out[(tracker, f)] = fh.read()
    return out


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    """The single-process run everything else must equal (one thread per tracker, as jobs run)."""
    res = tmp_path_factory.mktemp("serial")
    assert (
        main(
            [
                "eval",
                shared_path("bench"),
                "--trackers",
                TRACKERS,
                "--max-frames",
                FRAMES,
                "--threads",
                "1",
                "--quiet",
                "--results",
                str(res),
            ]
        )
        == 0
    )
    files = _boxes_files(str(res))
    assert len(files) == 4 and all(len(t.splitlines()) == int(FRAMES) for t in files.values())
    return files


def _descendants(pid):
    """(pid, command line) of every process below pid, read from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for child, ppid in parent.items():
            if ppid == p:
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                out.append((child, cmd))
                todo.append(child)
    return out


def _run_and_kill_a_worker(args, is_worker, res):
    """Start `eval` as a real process; once its first job has finished, SIGKILL one worker that is
    running a job; return (exit code, stderr, killed pid)."""
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
            str(res),
        ]
        + args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, killed = [], None
    try:
        for line in proc.stderr:
            lines.append(line)
            if killed is None and " 1/4 jobs" in line:
                while killed is None and proc.poll() is None:
                    workers = [p for p, cmd in _descendants(proc.pid) if is_worker(cmd)]
                    if workers:
                        killed = workers[0]
                        os.kill(killed, signal.SIGKILL)
                    else:
                        time.sleep(0.05)  # polling /proc for the worker to appear, not a timed assertion
        out = proc.stdout.read()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines), killed, out


def test_local_processes_without_ray_say_so_and_match_the_serial_run(tmp_path, capsys, monkeypatch, serial_results):
    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without the extra
    assert (
        main(
            [
                "eval",
                shared_path("bench"),
                "--trackers",
                TRACKERS,
                "--max-frames",
                FRAMES,
                "--ray",
                "--results",
                str(tmp_path),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "ray is not installed" in captured.err and "local processes (one per core)" in captured.err
    assert "processes x" in captured.out
    assert _boxes_files(str(tmp_path)) == serial_results


def test_a_killed_pool_worker_is_replaced_and_nothing_is_lost(tmp_path, serial_results):
    rc, err, killed, out = _run_and_kill_a_worker(
        ["--workers", "2"], lambda cmd: "spawn_main" in cmd and "resource_tracker" not in cmd, tmp_path
    )
    assert rc == 0, err
    assert killed is not None, "no worker process was found to kill"
    assert "a worker process died" in err and "submitted again" in err
    assert _boxes_files(str(tmp_path)) == serial_results
    assert "4 jobs (0 read back)" in out and not [f for f in os.listdir(tmp_path / "csrt") if f.endswith(".part")]


def _ray():
    return pytest.importorskip(
        "ray", reason="ray is not installed (optional extra: pip install -e '.[ray]'); run .ci/ray for the Ray tests"
    )


def test_ray_run_matches_the_serial_run_with_progress(tmp_path, serial_results):
    _ray()
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "eval",
            shared_path("bench"),
            "--trackers",
            TRACKERS,
            "--max-frames",
            FRAMES,
            "--ray",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ray: 4 jobs on" in proc.stderr and "ray x" in proc.stdout
    for k in range(1, 5):
        assert f"] {k}/4 jobs" in proc.stderr and "ETA" in proc.stderr
    assert _boxes_files(str(tmp_path)) == serial_results


def test_ray_worker_killed_mid_run_is_retried_and_nothing_is_lost(tmp_path, serial_results):
    _ray()
    rc, err, killed, out = _run_and_kill_a_worker(["--ray"], lambda cmd: cmd.startswith("ray::eval "), tmp_path)
    assert rc == 0, err
    assert killed is not None, "no Ray worker was found running a job"
    assert "4/4 jobs" in err and "4 jobs (0 read back)" in out
    assert _boxes_files(str(tmp_path)) == serial_results


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def test_interrupted_run_resumes_without_half_written_files(tmp_path, serial_results):
    """Ctrl-C (a real SIGINT) after the first job: what finished is on disk whole, nothing is
    half-written, and the same command finishes the rest, reading the finished pairs back."""
    args = [
        sys.executable,
        "main.py",
        "eval",
        shared_path("bench"),
        "--trackers",
        TRACKERS,
        "--max-frames",
        FRAMES,
        "--threads",
        "1",
        "--results",
        str(tmp_path),
    ]
    # the child starts with Ctrl-C's default disposition and unblocked, whatever an earlier test in
    # this process left (an ignored or blocked SIGINT survives exec, and the run would not stop)
    inherited = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    try:
        for line in proc.stderr:
            if " 1/4 jobs" in line:
                proc.send_signal(signal.SIGINT)
                break
        proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, f"SIGINT did not stop the run; this process had SIGINT {inherited}"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if p.name.endswith(".part")]
    done = _boxes_files(str(tmp_path))
    assert 1 <= len(done) < 4 and all(serial_results[k] == v for k, v in done.items())
    rerun = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"4 jobs ({len(done)} read back)" in rerun.stdout
    assert _boxes_files(str(tmp_path)) == serial_results
