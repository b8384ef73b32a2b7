"""Child processes: bounded runs, a command's output, dying with the parent."""

import os
import signal
import subprocess


def run_bounded(args, timeout, **options):
    """subprocess.run with a time limit that also ends the grandchildren it started (its own
    process group, and nothing else)."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True, **options)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.communicate()
        raise
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def command_output(args, timeout=120):
    """A command's stdout (or stderr when stdout is empty), stripped; None when it fails."""
    try:
        r = run_bounded(args, timeout)
        return (r.stdout or r.stderr).strip() if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def die_with_parent():
    """For preexec_fn (or the start of a child): SIGKILL this process when its parent dies
    without cleaning up (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
