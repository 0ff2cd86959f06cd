"""redis-py's own Lock, unchanged, against a lockgate address.

Usage: redis_py_lock.py HOST PORT PROTOCOL   (PROTOCOL 2 or 3; see checks.py)
"""
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

from checks import HOST, PORT, PROTOCOL, RUN, check, kill_one_master, raises


def client():
    return redis.Redis(host=HOST, port=PORT, protocol=PROTOCOL)


a, b = client(), client()
check(f"connect and ping (RESP{PROTOCOL})", a.ping())
key = f"compat:redis-py:{PROTOCOL}:{RUN}"

la = a.lock(key, timeout=5, blocking=False)
check("acquire", la.acquire())
check("token visible with GET", a.get(key) == la.local.token)
lb = b.lock(key, timeout=5, blocking=False)
check("contention: second client refused", not lb.acquire())
check("locked() and owned()", la.locked() and la.owned() and not lb.owned())
check("extend (add)", la.extend(5))
pttl = a.pttl(key)
check("extend added time", pttl > 5000, f"pttl {pttl}")
check("extend (replace)", la.extend(3, replace_ttl=True))
check("reacquire", la.reacquire())
forged = b.lock(key, timeout=5)
forged.local.token = b"not-the-owner"
check("release by non-owner refused", raises(forged.release, LockNotOwnedError))
la.release()
check("release", a.get(key) is None)

short = a.lock(key + ":exp", timeout=0.5, blocking=False)
check("acquire with 500 ms ttl", short.acquire())
time.sleep(0.7)
check("expired lock can be taken again", b.lock(key + ":exp", timeout=1, blocking=False).acquire())

holder = a.lock(key + ":wait", timeout=5)
check("holder acquires", holder.acquire())
got = {}


def waiter():
    w = client().lock(key + ":wait", timeout=5, blocking_timeout=5)
    got["ok"] = w.acquire()


t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
holder.release()
t.join(6)
check("blocking waiter gets the lock after release", got.get("ok") is True)

forever = a.lock(key + ":forever", blocking=False)
check("acquire with no timeout", forever.acquire())
ttl = a.pttl(key + ":forever")
check("no-timeout lock still has a bounded ttl", ttl > 0, f"{ttl} ms")
forever.release()

gone = a.lock(key + ":gone", timeout=0.2, blocking=False)
gone.acquire()
time.sleep(0.35)
check("release after expiry raises", raises(gone.release, LockNotOwnedError, LockError))

held = a.lock(key + ":kill", timeout=5, blocking=False)
check("acquire before a master dies", held.acquire())
kill_one_master()
check("extend with one master killed", held.extend(5))
check("contention with one master killed", not b.lock(key + ":kill", timeout=5, blocking=False).acquire())
held.release()
check("release with one master killed", a.get(key + ":kill") is None)
again = b.lock(key + ":kill", timeout=5, blocking=False)
check("acquire again with one master killed", again.acquire())
again.release()
print("redis-py", redis.__version__, f"RESP{PROTOCOL}: all checks passed")
