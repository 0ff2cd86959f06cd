"""Shared plumbing for the client-library suites in this folder.

Each suite is run by proxy/tests/compat_python.rs as
`python SUITE.py HOST PORT [PROTOCOL]` against a gateway over three masters,
with LOCKGATE_KILL_PID naming one master's redis-server: the suite kills it
midway, to show the library keeps working with one master gone.
Every check prints one line, `ok   <name>` or `FAIL <name>`, and the first
failure exits non-zero.
"""
import os
import signal
import sys
import time

HOST = sys.argv[1]
PORT = int(sys.argv[2])
PROTOCOL = int(sys.argv[3]) if len(sys.argv) > 3 else 2
RUN = f"{time.time_ns()}"


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (f" ({detail})" if detail else ""), flush=True)
    if not cond:
        sys.exit(1)


def kill_one_master():
    """SIGKILLs the master the test harness named; returns its pid."""
    import redis

    # The gateway's view just before, for the log of a failed run.
    info = redis.Redis(host=HOST, port=PORT).info("lockgate")
    print("     masters before the kill:", {k: v for k, v in info.items() if k.startswith("master")}, flush=True)
    pid = int(os.environ["LOCKGATE_KILL_PID"])
    os.kill(pid, signal.SIGKILL)
    # Give the gateway's connection a moment to see the reset, as a real
    # outage would; the lock path must not depend on it either way.
    time.sleep(0.2)
    return pid


def raises(fn, *exc):
    try:
        fn()
    except exc:
        return True
    return False
