"""python-redis-lock's Lock, unchanged, against a lockgate address.

Usage: python_redis_lock.py HOST PORT PROTOCOL   (see checks.py)
Its release script answers 0 for success, and waiters sleep in BLPOP on a
signal list; lockgate answers BLPOP on that key once the lock is free.
"""
import threading
import time

import redis
import redis_lock
from redis_lock import NotAcquired

from checks import HOST, PORT, PROTOCOL, RUN, check, kill_one_master, raises


def client():
    return redis.Redis(host=HOST, port=PORT, protocol=PROTOCOL)


a, b = client(), client()
name = f"compat:prl:{PROTOCOL}:{RUN}"

la = redis_lock.Lock(a, name, expire=5)
check("acquire", la.acquire(blocking=False))
check("locked() and get_owner_id()", la.locked() and la.get_owner_id() == la.id)
check("contention: second client refused", not redis_lock.Lock(b, name, expire=5).acquire(blocking=False))
la.extend(10)
pttl = a.pttl("lock:" + name)
check("extend (seconds)", 9000 < pttl <= 10000, f"pttl {pttl}")
forged = redis_lock.Lock(b, name, id="not-the-owner")
check("release by non-owner refused", raises(forged.release, NotAcquired))
la.release()
check("release", not la.locked())
check("second release raises NotAcquired", raises(la.release, NotAcquired))

short = redis_lock.Lock(a, name + ":exp", expire=1)
check("acquire with 1 s expiry", short.acquire(blocking=False))
time.sleep(1.2)
check("expired lock can be taken again", redis_lock.Lock(b, name + ":exp", expire=1).acquire(blocking=False))

holder = redis_lock.Lock(a, name + ":wait", expire=5)
check("holder acquires", holder.acquire())
got = {}


def waiter():
    w = redis_lock.Lock(client(), name + ":wait", expire=5)
    start = time.monotonic()
    got["ok"] = w.acquire(timeout=5)
    got["waited"] = time.monotonic() - start


t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
holder.release()
t.join(6)
check("blocking waiter (BLPOP) gets the lock after release", got.get("ok") is True,
      f"waited {got.get('waited', 0):.3f} s")

forever = redis_lock.Lock(a, name + ":forever")
check("acquire with no expiry", forever.acquire(blocking=False))
ttl = a.pttl("lock:" + name + ":forever")
check("no-expiry lock still has a bounded ttl", ttl > 0, f"{ttl} ms")
forever.release()

renewed = redis_lock.Lock(a, name + ":renew", expire=1, auto_renewal=True)
check("acquire with auto_renewal", renewed.acquire(blocking=False))
time.sleep(1.5)
check("auto-renewal keeps the lock past its expiry", renewed.locked())
renewed.release()

held = redis_lock.Lock(a, name + ":kill", expire=5)
check("acquire before a master dies", held.acquire(blocking=False))
kill_one_master()
held.extend(5)
check("extend with one master killed", a.pttl("lock:" + name + ":kill") > 4000)
check("contention with one master killed",
      not redis_lock.Lock(b, name + ":kill", expire=5).acquire(blocking=False))
held.release()
check("release with one master killed", not held.locked())
check("acquire again with one master killed",
      redis_lock.Lock(b, name + ":kill", expire=5).acquire(blocking=False))
print("python-redis-lock", redis_lock.__version__, f"RESP{PROTOCOL}: all checks passed")
