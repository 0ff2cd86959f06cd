"""redis-py's own Lock, unchanged, against a lockgate address.

Usage: redis_py_lock.py HOST PORT PROTOCOL   (PROTOCOL 2 or 3)
Prints one line per check and exits non-zero on the first failure.
"""
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

host, port, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def client():
    return redis.Redis(host=host, port=port, protocol=proto)


def check(name, cond):
    print(("ok   " if cond else "FAIL ") + name, flush=True)
    if not cond:
        sys.exit(1)


a, b = client(), client()
check(f"connect and ping (RESP{proto})", a.ping())

key = f"compat:redis-py:{proto}:{time.time_ns()}"
la = a.lock(key, timeout=5, blocking=False)
check("acquire", la.acquire())
check("token visible with GET", a.get(key) == la.local.token)
lb = b.lock(key, timeout=5, blocking=False)
check("contention: second client refused", not lb.acquire())
check("locked() and owned()", la.locked() and la.owned() and not lb.owned())
check("extend (add)", la.extend(5))
pttl = a.pttl(key)
check(f"extend added time (pttl {pttl})", pttl > 5000)
check("extend (replace)", la.extend(3, replace_ttl=True))
check("reacquire", la.reacquire())
# A non-owner's release is refused: forge a lock object with another token.
forged = b.lock(key, timeout=5)
forged.local.token = b"not-the-owner"
try:
    forged.release()
    check("release by non-owner refused", False)
except LockNotOwnedError:
    check("release by non-owner refused", True)
la.release()
check("release", a.get(key) is None)

# Expiry: the lock frees itself after its TTL.
short = a.lock(key + ":exp", timeout=0.5, blocking=False)
check("acquire with 500 ms ttl", short.acquire())
time.sleep(0.7)
check("expired lock can be taken again", b.lock(key + ":exp", timeout=1, blocking=False).acquire())

# Blocking acquire: a waiter gets the lock after release.
holder = a.lock(key + ":wait", timeout=5)
check("holder acquires", holder.acquire())
got = {}


def waiter():
    w = client().lock(key + ":wait", timeout=5, blocking_timeout=5)
    got["ok"] = w.acquire()
    got["token"] = w.local.token


t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
holder.release()
t.join(6)
check("blocking waiter gets the lock after release", got.get("ok") is True)

# No expiry (redis-py's default timeout=None) still gets a bounded lease.
forever = a.lock(key + ":forever", blocking=False)
check("acquire with no timeout", forever.acquire())
ttl = a.pttl(key + ":forever")
check(f"no-timeout lock still has a ttl ({ttl} ms)", ttl > 0)
forever.release()

# Releasing a lock that expired raises, as against one Redis.
gone = a.lock(key + ":gone", timeout=0.2, blocking=False)
gone.acquire()
time.sleep(0.35)
try:
    gone.release()
    check("release after expiry raises LockNotOwnedError", False)
except (LockNotOwnedError, LockError):
    check("release after expiry raises LockNotOwnedError", True)
print("redis-py", redis.__version__, f"RESP{proto}: all checks passed")
