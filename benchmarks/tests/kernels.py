"""Test helpers: `echo --features --json` tables as echo prints them on a given kernel, and a stand-in
`echo` executable (a real process) that answers --features and --check as a kernel would."""

import json
import os
import stat
import sys
import textwrap

# Every io_uring feature echo knows, with the Linux release that brought it (echo --features).
FEATURES = [("fast-poll", "5.7"), ("provide-buffers", "5.7"), ("sqpoll", "5.13"), ("submit-all", "5.18"),
            ("coop-taskrun", "5.19"), ("buffer-ring", "5.19"), ("multishot-accept", "5.19"),
            ("direct-descriptors", "5.19"), ("single-issuer", "6.0"), ("multishot-receive", "6.0"),
            ("zero-copy-send", "6.0"), ("defer-taskrun", "6.1"), ("receive-bundles", "6.10"),
            ("incremental-buffers", "6.12"), ("direct-descriptor-release", "6.13")]
DESIGNS = [((6, 12), "multishot, defer-taskrun, incremental buffers"), ((6, 1), "multishot, defer-taskrun, whole buffers"),
           ((6, 0), "multishot, whole buffers"), ((0, 0), "legacy")]
# The reason as echo gives it where io_uring_setup is refused (its one-line error without "echo: error: ").
UNAVAILABLE = ("io_uring is unavailable: io_uring_setup was refused (Operation not permitted), perhaps by a seccomp "
               "filter or a container policy; try --backend epoll")


def version(text):
    return tuple(int(part) for part in text.split(".")[:2])


def table(kernel, available=True):
    """The table echo prints on Linux `kernel` ("6.1"), or where io_uring cannot be set up."""
    have = version(kernel)
    features = [{"name": name, "since": since, "available": available and version(since) <= have,
                 "used_by_default": available and version(since) <= have and name not in ("sqpoll", "zero-copy-send", "direct-descriptor-release")}
                for name, since in FEATURES]
    if not available:
        return {"kernel_release": f"{kernel}.0-test", "uring_available": False, "reason": UNAVAILABLE,
                "default": None, "features": features}
    design = next(text for since, text in DESIGNS if since <= have)
    left_out = [{"feature": "incremental-buffers", "reason": f"needs Linux 6.12, this kernel is {kernel}"}] \
        if have < (6, 12) and have >= (6, 1) else []
    return {"kernel_release": f"{kernel}.0-test", "uring_available": True,
            "default": {"design": design, "summary": "test", "left_out": left_out}, "features": features}


def fake_echo(folder, features=None, refuse=(), old=False):
    """An executable stand-in for echo in `folder`: `--features --json` prints `features` (a table);
    `--check FLAGS` exits 1 with one error line when a flag in `refuse` ({flag: line}) is among
    them, else prints "can serve" and exits 0. `old`: an echo from before both flags (exit 64)."""
    path = os.path.join(folder, "echo")
    script = f"""\
        #!{sys.executable}
        import json, sys
        FEATURES = {json.dumps(features)!r}
        REFUSE = {json.dumps(dict(refuse))!r}
        OLD = {old!r}
        args = sys.argv[1:]
        for flag in ("--features", "--check"):
            if flag in args and OLD:
                sys.stderr.write(f"echo: error: Unknown option '{{flag}}' (see 'echo --help')\\n")
                sys.exit(64)
        if "--features" in args:
            print(FEATURES)
            sys.exit(0)
        if "--check" in args:
            for flag, line in json.loads(REFUSE).items():
                if flag in args:
                    sys.stderr.write(line + "\\n")
                    sys.exit(1)
            sys.stderr.write("echo: uring backend can serve (test)\\n")
            sys.exit(0)
        sys.stderr.write("echo: error: the stand-in echo does not serve\\n")
        sys.exit(1)
        """
    with open(path, "w") as f:
        f.write(textwrap.dedent(script))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path
