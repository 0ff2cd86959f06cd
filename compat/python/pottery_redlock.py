"""pottery's Redlock, unchanged, with the gateway as its only master.

Usage: pottery_redlock.py HOST PORT PROTOCOL   (see checks.py)
pottery is a client-side Redlock: given one master it uses quorum 1, and the
gateway does the real quorum behind that one address.
"""
import importlib.metadata
import threading
import time

import redis
from pottery import ReleaseUnlockedLock, Redlock

from checks import HOST, PORT, PROTOCOL, RUN, check, kill_one_master, raises


def client():
    return redis.Redis(host=HOST, port=PORT, protocol=PROTOCOL)


a, b = client(), client()
key = f"compat:pottery:{PROTOCOL}:{RUN}"


def lock(conn, name=key, ttl=5):
    return Redlock(key=name, masters={conn}, auto_release_time=ttl)


la = lock(a)
check("acquire", la.acquire(blocking=False))
left = la.locked()
check("locked() reports the remaining lease", 0 < left <= 5, f"{left:.3f} s")
check("contention: second client refused", not lock(b).acquire(blocking=False))
check("locked() is 0 for a non-owner", lock(b).locked() == 0)
time.sleep(0.5)
la.extend()
left = la.locked()
check("extend renews the lease", left > 4.6, f"{left:.3f} s")
check("release by non-owner refused", raises(lock(b).release, ReleaseUnlockedLock))
la.release()
check("release", la.locked() == 0 and a.get("redlock:" + key) is None)

short = lock(a, key + ":exp", ttl=0.5)
check("acquire with 500 ms ttl", short.acquire(blocking=False))
time.sleep(0.7)
check("expired lock can be taken again", lock(b, key + ":exp", ttl=1).acquire(blocking=False))

holder = lock(a, key + ":wait")
check("holder acquires", holder.acquire(blocking=False))
got = {}


def waiter():
    got["ok"] = lock(client(), key + ":wait").acquire(timeout=5)


t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
holder.release()
t.join(6)
check("blocking waiter gets the lock after release", got.get("ok") is True)

held = lock(a, key + ":kill")
check("acquire before a master dies", held.acquire(blocking=False))
kill_one_master()
held.extend()
check("extend with one master killed", held.locked() > 4)
check("contention with one master killed", not lock(b, key + ":kill").acquire(blocking=False))
held.release()
check("release with one master killed", held.locked() == 0)
check("acquire again with one master killed", lock(b, key + ":kill").acquire(blocking=False))
print("pottery", importlib.metadata.version("pottery"), f"RESP{PROTOCOL}: all checks passed")
