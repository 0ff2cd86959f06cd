// node-redlock v5 with ioredis, unchanged, against a lockgate address.
//
// Usage: node redlock_v5.js HOST PORT   (run by proxy/tests/compat_node.rs)
// LOCKGATE_KILL_PID names one master's redis-server; the suite kills it
// midway to show the library keeps working with one master gone. Each check
// prints `ok   <name>` or `FAIL <name>`; the first failure exits non-zero.
//
// node-redlock is a client-side Redlock: given one client it uses quorum 1,
// and the gateway does the real quorum behind that one address. Its scripts
// are multi-key (all or nothing) and it insists on integer replies equal to
// the number of keys.
"use strict";

const Redlock = require("redlock").default;
const { ResourceLockedError, ExecutionError } = require("redlock");
const Redis = require("ioredis");

const [host, port] = [process.argv[2], Number(process.argv[3])];
const run = `${process.hrtime.bigint()}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(name, cond, detail) {
  console.log(`${cond ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}`);
  if (!cond) process.exit(1);
}

async function rejects(promise) {
  try {
    await promise;
    return false;
  } catch (e) {
    return e instanceof ExecutionError || e instanceof ResourceLockedError;
  }
}

async function main() {
  const a = new Redis({ host, port, lazyConnect: true });
  const b = new Redis({ host, port, lazyConnect: true });
  await a.connect();
  await b.connect();
  check("connect (ioredis ready check)", a.status === "ready" && b.status === "ready");
  const once = { retryCount: 0 };
  const ra = new Redlock([a], once);
  const rb = new Redlock([b], once);
  const k1 = `compat:node:${run}:1`;
  const k2 = `compat:node:${run}:2`;

  const lock = await ra.acquire([k1, k2], 5000);
  check("acquire two resources", lock.value.length === 32 && (await a.exists(k1, k2)) === 2);
  check("GET shows the lock value", (await a.get(k1)) === lock.value);
  check("contention: second client refused", await rejects(rb.acquire([k2], 5000)));
  check("all or nothing: a partly held set is refused", await rejects(rb.acquire([`${k1}:free`, k1], 5000)));
  check("all or nothing: nothing of the refused set was taken", (await a.exists(`${k1}:free`)) === 0);
  const extended = await lock.extend(8000);
  const pttl = await a.pttl(k2);
  check("extend", pttl > 7000, `pttl ${pttl}`);
  const forged = { ...extended, value: "not-the-owner" };
  check(
    "release by non-owner refused",
    await rejects(rb.release(Object.assign(Object.create(Object.getPrototypeOf(extended)), forged))),
  );
  check("non-owner release left the lock", (await a.exists(k1, k2)) === 2);
  await extended.release();
  check("release", (await a.exists(k1, k2)) === 0);

  const short = await ra.acquire([`${k1}:exp`], 500);
  check("acquire with 500 ms ttl", short.value.length === 32);
  await sleep(700);
  check("expired lock can be taken again", !(await rejects(rb.acquire([`${k1}:exp`], 1000))));

  const holder = await ra.acquire([`${k1}:wait`], 5000);
  const waiting = new Redlock([b], { retryCount: 30, retryDelay: 100, retryJitter: 50 });
  const started = Date.now();
  const waiter = waiting.acquire([`${k1}:wait`], 5000);
  await sleep(300);
  await holder.release();
  const got = await waiter;
  check("blocking (retrying) waiter gets the lock after release", got.value !== holder.value,
    `${Date.now() - started} ms`);
  await got.release();

  let renewed = 0;
  await ra.using([`${k1}:using`], 1000, { automaticExtensionThreshold: 500 }, async (signal) => {
    await sleep(1600);
    renewed = await a.pttl(`${k1}:using`);
    check("using(): auto-extension kept the lock", !signal.aborted && renewed > 0, `pttl ${renewed}`);
  });
  check("using(): released at the end", (await a.exists(`${k1}:using`)) === 0);

  const held = await ra.acquire([`${k1}:kill`], 5000);
  check("acquire before a master dies", held.value.length === 32);
  process.kill(Number(process.env.LOCKGATE_KILL_PID), "SIGKILL");
  await sleep(200);
  const held2 = await held.extend(5000);
  check("extend with one master killed", (await a.pttl(`${k1}:kill`)) > 4000);
  check("contention with one master killed", await rejects(rb.acquire([`${k1}:kill`], 5000)));
  await held2.release();
  check("release with one master killed", (await a.exists(`${k1}:kill`)) === 0);
  const again = await rb.acquire([`${k1}:kill`], 5000);
  check("acquire again with one master killed", again.value.length === 32);
  await again.release();

  a.disconnect();
  b.disconnect();
  const fs = require("fs");
  const v = (p) => JSON.parse(fs.readFileSync(`${__dirname}/node_modules/${p}/package.json`, "utf8")).version;
  console.log(`node-redlock ${v("redlock")} with ioredis ${v("ioredis")}: all checks passed`);
}

main().catch((e) => {
  console.log(`FAIL unexpected error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
