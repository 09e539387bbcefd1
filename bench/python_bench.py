#!/usr/bin/python3
"""Benchmark baseline, impl "python": Python's own multiprocessing.managers.SyncManager over TCP.

    /usr/bin/python3 bench/python_bench.py --scenario NAME [--seconds S] [--window W]
                                           [--clients N] [--items K]

Runs ONE scenario of the shared benchmark spec once and prints one JSON line on stdout (see
bench/README.md). Standard library only. The manager is a SyncManager subclass listening on
('127.0.0.1', 0) with a Maths class registered; it runs in its own (forked) server process, and
every client process is forked from this one before it starts any thread.

How each scenario maps onto Python's manager:

- sync_add, dict_set, dict_get, lock_pair: one client (this process) calling synchronously;
  keys of the dict are i % 1000 (dict_get pre-fills them); lock_pair is acquire() + release().
- pipelined_add, clients_window_add: EMULATED. Python proxies cannot have several calls in flight
  on one connection, so "W calls in flight" is emulated by W threads per client process, each
  thread with its own proxy (a copy of the Maths proxy; the manager gives every thread its own
  connection, hence its own server thread) calling add() synchronously. pipelined_add is one
  process with --window threads (default 64), clients_window_add is --clients processes
  (default 8) with --window threads each (default 16). Their JSON carries "emulated": "threads".
- clients_sync_add: --clients processes (default 8), one synchronous caller each. Aggregate
  ops/s counts the calls completed inside a common time window [t0, t0 + S]; every client is
  already calling when the window opens and keeps calling until it closes.
- queue_64B, queue_1MiB: a producer process and a consumer process share one managed Queue
  (unbounded for 64 B, maxsize 16 for 1 MiB so the server holds at most 16 MiB of backlog);
  items are bytes, a None sentinel ends the run. A few items are passed first as warm-up, then
  the rate is items (or MiB) / (time of the last get - time of the first put), both read from
  CLOCK_MONOTONIC, which is common to all processes. --items K fixes the item count instead of
  running S seconds.
- parked_waiters: --items waiters (default 1000) park in get() on one managed Queue `wq`. In
  Python a parked waiter needs its own thread and connection (and, in the server, its own
  thread); they come from --clients processes (default 4, i.e. 4 x 250 threads sharing their
  process's proxy, which keeps one connection per thread). The value is (server VmRSS with the
  waiters parked - VmRSS before) / waiters, in KiB. The latency is the median of 200 put -> get
  round trips by this (another) client on a SECOND queue `lq` of the same server: a put on `wq`
  itself would be taken by a parked waiter, so a second queue is the fair way to ask "does the
  server slow down with 1000 waiters parked". latency_with_us is measured while they are
  parked; latency_without_us is the median of 200 round trips before the waiters exist plus
  200 after they are released (1000 puts on `wq`) and gone, so slow drift of a noisy machine
  does not bias the ratio one way. Every waiter's get() has a server-side timeout.
  Set-up is not measured: a new manager connection costs ~40 ms on loopback (see
  connect_gate), so the 1000 connections take a few seconds.
- frames_4k_queue: as queue_1MiB with 4K frames (3840*2160*3 bytes) and maxsize 4; MiB/s.
- dict_1M_rss: server VmRSS after filling a managed dict with 1,000,000 int -> int entries
  (d.update in chunks of 10,000) minus its VmRSS before, in MiB. --items changes the count.

Every wait is bounded and a SIGALRM watchdog kills everything after 55 s; children also carry
their own alarm. Errors: message on stderr, exit status 1.
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import pickle
import signal
import statistics
import sys
import threading
import time
import traceback
from multiprocessing.managers import SyncManager

IMPL = "python"
SCENARIOS = ("sync_add", "pipelined_add", "dict_set", "dict_get", "queue_64B", "lock_pair",
             "clients_sync_add", "clients_window_add", "queue_1MiB", "parked_waiters",
             "dict_1M_rss", "frames_4k_queue")
BUDGET_S = 55.0              # the whole program, watchdog included, stays under 60 s
CTX = mp.get_context("fork")
now = time.monotonic         # CLOCK_MONOTONIC: comparable between processes on this host
START = now()
DEADLINE = START + BUDGET_S
CONNECTS_IN_FLIGHT = 12      # concurrent connection set-ups, all client processes together


class MathsClass:
    def add(self, x, y):
        return x + y

    def mul(self, x, y):
        return x * y


class BenchManager(SyncManager):
    pass


BenchManager.register("Maths", MathsClass)

_manager = None              # the running manager, for the watchdog
_children = []               # every Process started, for the watchdog and cleanup


def remaining():
    return DEADLINE - now()


def _watchdog(signum, frame):
    sys.stderr.write("python_bench: watchdog: %.0f s budget exceeded, killing everything\n"
                     % BUDGET_S)
    for p in _children:
        try:
            p.kill()
        except Exception:
            pass
    try:
        if _manager is not None and _manager._process is not None:
            _manager._process.kill()
    except Exception:
        pass
    sys.stderr.flush()
    os._exit(1)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads for pid %d" % pid)


def connect_gate(nproc):
    """How many connection set-ups one of nproc client processes runs at a time.

    A new manager connection costs ~40 ms on loopback (its authentication handshake writes twice
    in a row without TCP_NODELAY: Nagle + delayed ACK), so hundreds of them opened one by one
    take many seconds; all at once they overflow the server's listen backlog (16) and stall in
    SYN retransmits. CONNECTS_IN_FLIGHT in all keeps the backlog safe."""
    return max(1, CONNECTS_IN_FLIGHT // nproc)


_keepalive = []              # per-thread proxies of a child, kept until its os._exit


def clone_proxy(proxy):
    """A new proxy to the same referent (what unpickling a proxy in another process gives)."""
    return pickle.loads(pickle.dumps(proxy))


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))  # nearest rank
    return sorted_vals[k]


def lat_fields(lats_s):
    lats = sorted(lats_s)
    if not lats:
        return {}
    return {"p50_us": round(pct(lats, 0.50) * 1e6, 1), "p99_us": round(pct(lats, 0.99) * 1e6, 1)}


# ---------------------------------------------------------------------------------------------
# Children: forked processes talking to this one over a Pipe; every receive is bounded.

class ChildError(RuntimeError):
    pass


def _child_entry(conn, target, args, alarm_s):
    signal.signal(signal.SIGALRM, signal.SIG_DFL)   # default action: the child dies
    signal.alarm(max(1, int(alarm_s)))
    code = 0
    try:
        target(conn, *args)
    except BaseException:
        code = 1
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:
            pass
    try:
        conn.close()
    except Exception:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the proxies' finalizers (one decref connection each); the server is shut down anyway.
    os._exit(code)


class Kids:
    def __init__(self):
        self.procs = []
        self.conns = []

    def spawn(self, target, *args):
        parent, child = CTX.Pipe()
        p = CTX.Process(target=_child_entry, args=(child, target, args, remaining() + 3),
                        daemon=True)
        p.start()
        child.close()
        _children.append(p)
        self.procs.append(p)
        self.conns.append(parent)
        return len(self.procs) - 1

    def expect(self, i, tag, timeout):
        conn = self.conns[i]
        timeout = max(0.0, min(timeout, remaining()))
        if not conn.poll(timeout):
            raise TimeoutError("child %d: no %r message within %.1f s" % (i, tag, timeout))
        try:
            msg = conn.recv()
        except EOFError:
            raise ChildError("child %d exited (code %s) before sending %r"
                             % (i, self.procs[i].exitcode, tag))
        if msg[0] == "error":
            raise ChildError("child %d failed:\n%s" % (i, msg[1]))
        if msg[0] != tag:
            raise ChildError("child %d: expected %r, got %r" % (i, tag, msg[0]))
        return msg

    def expect_all(self, tag, timeout):
        end = now() + timeout
        return [self.expect(i, tag, end - now()) for i in range(len(self.procs))]

    def send(self, i, msg):
        self.conns[i].send(msg)

    def send_all(self, msg):
        for c in self.conns:
            c.send(msg)

    def join(self, timeout):
        end = now() + timeout
        for p in self.procs:
            p.join(max(0.0, min(end - now(), remaining())))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join(1.0)
        bad = [p.exitcode for p in self.procs if p.exitcode != 0]
        if bad:
            raise ChildError("children exited with codes %r" % bad)


def child_expect(conn, tag, timeout):
    if not conn.poll(max(0.0, timeout)):
        raise TimeoutError("no %r from the parent within %.1f s" % (tag, timeout))
    msg = conn.recv()
    if msg[0] != tag:
        raise RuntimeError("expected %r, got %r" % (tag, msg[0]))
    return msg


# ---------------------------------------------------------------------------------------------
# Single-client synchronous loops (run in this process).

def warmup(op, seconds=0.2, count=300):
    end = now() + seconds
    for i in range(count):
        op(i)
        if now() >= end:
            break


def timed_loop(op, seconds):
    lats = []
    append = lats.append
    clock = now
    i = 0
    t_start = clock()
    t_end = t_start + seconds
    while True:
        a = clock()
        op(i)
        b = clock()
        append(b - a)
        i += 1
        if b >= t_end:
            break
    elapsed = clock() - t_start
    return len(lats), elapsed, lats


def sync_result(scenario, op, seconds, unit="ops/s"):
    warmup(op)
    n, elapsed, lats = timed_loop(op, seconds)
    res = {"impl": IMPL, "scenario": scenario, "value": round(n / elapsed, 1), "unit": unit}
    res.update(lat_fields(lats))
    res["n"] = n
    return res


def sc_sync_add(m, a):
    maths = m.Maths()
    return sync_result("sync_add", lambda i: maths.add(i, 1), a.seconds)


def sc_dict_set(m, a):
    d = m.dict()
    return sync_result("dict_set", lambda i: d.__setitem__(i % 1000, i), a.seconds)


def sc_dict_get(m, a):
    d = m.dict()
    d.update({k: k for k in range(1000)})
    return sync_result("dict_get", lambda i: d[i % 1000], a.seconds)


def sc_lock_pair(m, a):
    lock = m.Lock()

    def op(i):
        lock.acquire()
        lock.release()
    return sync_result("lock_pair", op, a.seconds)   # one op = one acquire + release pair


# ---------------------------------------------------------------------------------------------
# Several clients calling add(): N processes x W threads, each thread synchronous.

def _add_loop(maths, t0, t_end, lats):
    """Call add until a call completes after t_end; count the calls completing in [t0, t_end]."""
    clock = now
    n = 0
    i = 0
    while True:
        a = clock()
        maths.add(i, 1)
        b = clock()
        i += 1
        if b > t_end:
            return n
        if b >= t0:
            n += 1
            if lats is not None:
                lats.append(b - a)


def w_add_client(conn, maths, nthreads, keep_lats, connect_gate):
    """Child: nthreads threads, each with its own proxy (hence its own connection)."""
    gate = threading.BoundedSemaphore(connect_gate)
    ready = threading.Semaphore(0)
    go = threading.Event()
    window = {}
    results = [None] * nthreads
    errors = []

    def body(k):
        try:
            with gate:                   # a few connection set-ups at a time, see connect_gate()
                p = clone_proxy(maths)   # its own proxy: one incref connection
                p.add(0, 0)              # opens this thread's connection
            _keepalive.append(p)         # no decref connection at exit (see _child_entry)
            warmup(lambda i: p.add(i, 1), seconds=0.1, count=50)
            ready.release()
            if not go.wait(40):
                raise TimeoutError("no go")
            lats = [] if keep_lats else None
            n = _add_loop(p, window["t0"], window["t_end"], lats)
            results[k] = (n, lats)
        except BaseException:
            errors.append(traceback.format_exc())
            ready.release()

    threads = [threading.Thread(target=body, args=(k,), daemon=True) for k in range(nthreads)]
    for t in threads:
        t.start()
    end = now() + 40
    for _ in range(nthreads):
        if not ready.acquire(timeout=max(0.0, end - now())):
            raise TimeoutError("threads not ready")
        if errors:
            raise RuntimeError(errors[0])
    conn.send(("ready",))
    _, t0, t_end = child_expect(conn, "go", 30)
    window["t0"], window["t_end"] = t0, t_end
    go.set()
    for t in threads:
        t.join(max(0.0, t_end - now() + 15))
    if errors:
        raise RuntimeError(errors[0])
    if any(r is None for r in results):
        raise TimeoutError("a thread did not finish")
    n = sum(r[0] for r in results)
    lats = [x for r in results if r[1] for x in r[1]] if keep_lats else []
    conn.send(("result", n, lats))


def run_add_clients(m, nproc, nthreads, seconds, keep_lats):
    maths = m.Maths()
    maths.add(0, 0)
    kids = Kids()
    for _ in range(nproc):
        kids.spawn(w_add_client, maths, nthreads, keep_lats, connect_gate(nproc))
    kids.expect_all("ready", 45)
    t0 = now() + 0.1        # everyone is calling before the window opens
    t_end = t0 + seconds
    kids.send_all(("go", t0, t_end))
    res = kids.expect_all("result", seconds + 20)
    kids.join(10)
    n = sum(r[1] for r in res)
    lats = [x for r in res for x in r[2]]
    return n, lats


def sc_clients_sync_add(m, a):
    nproc = a.clients or 8
    n, lats = run_add_clients(m, nproc, 1, a.seconds, True)
    res = {"impl": IMPL, "scenario": "clients_sync_add", "value": round(n / a.seconds, 1),
           "unit": "ops/s"}
    res.update(lat_fields(lats))
    res.update({"n": n, "clients": nproc})
    return res


def sc_pipelined_add(m, a):
    w = a.window or 64
    n, _ = run_add_clients(m, 1, w, a.seconds, False)
    return {"impl": IMPL, "scenario": "pipelined_add", "value": round(n / a.seconds, 1),
            "unit": "ops/s", "n": n, "window": w, "clients": 1, "emulated": "threads"}


def sc_clients_window_add(m, a):
    nproc = a.clients or 8
    w = a.window or 16
    n, _ = run_add_clients(m, nproc, w, a.seconds, False)
    return {"impl": IMPL, "scenario": "clients_window_add", "value": round(n / a.seconds, 1),
            "unit": "ops/s", "n": n, "window": w, "clients": nproc, "emulated": "threads"}


# ---------------------------------------------------------------------------------------------
# Queues: producer process -> consumer process.

def w_producer(conn, q, size, nwarm, seconds, items):
    item = b"x" * size
    for _ in range(nwarm):
        q.put(item)
    conn.send(("ready",))
    _, t0 = child_expect(conn, "go", 30)
    while now() < t0:
        time.sleep(max(0.0, min(0.01, t0 - now())))
    t_end = t0 + seconds
    first = now()
    n = 0
    while True:
        q.put(item)
        n += 1
        if items:
            if n >= items:
                break
        elif now() >= t_end:
            break
    q.put(None)
    conn.send(("result", n, first))


def w_consumer(conn, q, size, nwarm):
    for _ in range(nwarm):
        x = q.get(timeout=30)
        if len(x) != size:
            raise RuntimeError("warm-up item of %d bytes" % len(x))
    conn.send(("ready",))
    n = 0
    last = None
    nbytes = 0
    while True:
        x = q.get(timeout=30)
        if x is None:
            break
        last = now()
        n += 1
        nbytes += len(x)
    conn.send(("result", n, last, nbytes))


def run_queue(m, a, size, maxsize, nwarm):
    q = m.Queue(maxsize)
    q.qsize()
    kids = Kids()
    prod = kids.spawn(w_producer, q, size, nwarm, a.seconds, a.items)
    cons = kids.spawn(w_consumer, q, size, nwarm)
    kids.expect_all("ready", 30)
    kids.send(prod, ("go", now() + 0.05))
    _, n_put, first = kids.expect(prod, "result", a.seconds + 30)
    _, n_got, last, nbytes = kids.expect(cons, "result", 30)
    kids.join(10)
    if n_put != n_got or nbytes != n_got * size or last is None:
        raise RuntimeError("queue mismatch: put %d, got %d items (%d bytes)"
                           % (n_put, n_got, nbytes))
    return n_got, last - first


def sc_queue_64B(m, a):
    n, dt = run_queue(m, a, 64, 0, 100)
    return {"impl": IMPL, "scenario": "queue_64B", "value": round(n / dt, 1), "unit": "ops/s",
            "n": n, "seconds": round(dt, 3), "item_bytes": 64}


def sc_queue_1MiB(m, a):
    size = 1 << 20
    n, dt = run_queue(m, a, size, 16, 4)
    return {"impl": IMPL, "scenario": "queue_1MiB", "value": round(n / dt, 1), "unit": "MiB/s",
            "n": n, "seconds": round(dt, 3), "item_bytes": size,
            "items_per_s": round(n / dt, 1)}


def sc_frames_4k_queue(m, a):
    size = 3840 * 2160 * 3
    n, dt = run_queue(m, a, size, 4, 2)
    return {"impl": IMPL, "scenario": "frames_4k_queue", "value": round(n * size / (1 << 20) / dt, 1),
            "unit": "MiB/s", "n": n, "seconds": round(dt, 3), "item_bytes": size,
            "frames_per_s": round(n / dt, 1)}


# ---------------------------------------------------------------------------------------------
# Parked waiters.

def w_waiters(conn, wq, nthreads, get_timeout, connect_gate):
    """Child: nthreads threads, each with its own connection (a proxy keeps one per thread, so
    they share this process's proxy of wq), each parked in wq.get(timeout=get_timeout)."""
    gate = threading.BoundedSemaphore(connect_gate)
    lock = threading.Lock()
    connected = threading.Semaphore(0)
    got = [0]
    errors = []

    def body():
        try:
            with gate:
                wq.qsize()           # opens this thread's connection (one more server thread)
            connected.release()
            wq.get(timeout=get_timeout)
            with lock:
                got[0] += 1
        except BaseException:
            errors.append(traceback.format_exc())
            connected.release()

    threads = [threading.Thread(target=body, daemon=True) for _ in range(nthreads)]
    for t in threads:
        t.start()
    end = now() + 40
    for _ in range(nthreads):
        if not connected.acquire(timeout=max(0.0, end - now())):
            raise TimeoutError("waiter threads could not connect")
        if errors:
            raise RuntimeError(errors[0])
    conn.send(("ready", nthreads))
    end = now() + get_timeout + 5
    for t in threads:
        t.join(max(0.0, end - now()))
    if errors:
        raise RuntimeError("%d waiter(s) failed; first:\n%s" % (len(errors), errors[0]))
    if got[0] != nthreads:
        raise TimeoutError("only %d of %d waiters got an item" % (got[0], nthreads))
    conn.send(("result", got[0]))


def put_get_latency(q, count, item=b"x" * 64):
    lats = []
    for _ in range(count):
        a = now()
        q.put(item)
        q.get(timeout=10)
        lats.append(now() - a)
    return lats


def sc_parked_waiters(m, a):
    nwait = a.items or 1000
    nproc = a.clients or 4
    per = [nwait // nproc + (1 if k < nwait % nproc else 0) for k in range(nproc)]
    pid = m._process.pid
    wq = m.Queue()
    lq = m.Queue()
    wq.qsize()
    for _ in range(100):                        # warm-up of the latency client
        lq.put(b"x" * 64)
        lq.get(timeout=10)
    lat_without_before = put_get_latency(lq, 200)
    time.sleep(0.2)
    threads_before = threads_of(pid)
    rss_before = rss_kib(pid)

    get_timeout = max(5.0, min(40.0, remaining() - 10))
    kids = Kids()
    for k in range(nproc):
        kids.spawn(w_waiters, wq, per[k], get_timeout, connect_gate(nproc))
    kids.expect_all("ready", min(42.0, remaining() - 8))
    # Every waiter thread has its connection (one server thread each) and has sent, or is about
    # to send, its get(); wait for the server to show the threads, then let the gets land.
    end = now() + 10
    while threads_of(pid) < threads_before + nwait and now() < end:
        time.sleep(0.05)
    threads_parked = threads_of(pid)
    time.sleep(0.5)
    if wq.qsize() != 0:
        raise RuntimeError("waiter queue not empty")
    rss_after = rss_kib(pid)
    lat_with = statistics.median(put_get_latency(lq, 200))

    for _ in range(nwait):                      # release the waiters
        wq.put(b"")
    res = kids.expect_all("result", min(get_timeout + 10, remaining() - 3))
    kids.join(10)
    if sum(r[1] for r in res) != nwait:
        raise RuntimeError("not every waiter was released")
    end = now() + 5                             # their server threads end with their connections
    while threads_of(pid) > threads_before and now() < end:
        time.sleep(0.05)
    lat_without_after = put_get_latency(lq, 200)
    lat_without = statistics.median(lat_without_before + lat_without_after)
    per_waiter = (rss_after - rss_before) / nwait
    return {"impl": IMPL, "scenario": "parked_waiters", "value": round(per_waiter, 2),
            "unit": "KiB/waiter", "n": nwait,
            "latency_without_us": round(lat_without * 1e6, 1),
            "latency_with_us": round(lat_with * 1e6, 1),
            "latency_ratio": round(lat_with / lat_without, 3),
            "rss_before_kib": rss_before, "rss_after_kib": rss_after,
            "server_threads_before": threads_before, "server_threads_parked": threads_parked,
            "client_processes": nproc}


# ---------------------------------------------------------------------------------------------

def sc_dict_1M_rss(m, a):
    total = a.items or 1_000_000
    chunk = 10_000
    pid = m._process.pid
    d = m.dict()
    d[-1] = -1
    del d[-1]
    time.sleep(0.1)
    rss_before = rss_kib(pid)
    t = now()
    for lo in range(0, total, chunk):
        hi = min(total, lo + chunk)
        d.update({k: k for k in range(lo, hi)})
        if remaining() < 5:
            raise TimeoutError("filling the dict takes too long")
    fill_s = now() - t
    n = len(d)
    if n != total:
        raise RuntimeError("dict has %d entries, expected %d" % (n, total))
    time.sleep(0.1)
    rss_after = rss_kib(pid)
    return {"impl": IMPL, "scenario": "dict_1M_rss",
            "value": round((rss_after - rss_before) / 1024.0, 2), "unit": "MiB",
            "n": n, "rss_before_kib": rss_before, "rss_after_kib": rss_after,
            "fill_s": round(fill_s, 3)}


RUNNERS = {
    "sync_add": sc_sync_add,
    "pipelined_add": sc_pipelined_add,
    "dict_set": sc_dict_set,
    "dict_get": sc_dict_get,
    "queue_64B": sc_queue_64B,
    "lock_pair": sc_lock_pair,
    "clients_sync_add": sc_clients_sync_add,
    "clients_window_add": sc_clients_window_add,
    "queue_1MiB": sc_queue_1MiB,
    "parked_waiters": sc_parked_waiters,
    "dict_1M_rss": sc_dict_1M_rss,
    "frames_4k_queue": sc_frames_4k_queue,
}


def main():
    global _manager
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--window", type=int, default=None)
    ap.add_argument("--clients", type=int, default=None)
    ap.add_argument("--items", type=int, default=None)
    a = ap.parse_args()
    if a.scenario not in RUNNERS:
        print(json.dumps({"impl": IMPL, "scenario": a.scenario, "unsupported": True}), flush=True)
        return 0
    if not (0 < a.seconds <= 20):
        raise ValueError("--seconds must be in (0, 20]")
    for name in ("window", "clients", "items"):
        v = getattr(a, name)
        if v is not None and v <= 0:
            raise ValueError("--%s must be positive" % name)

    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(int(BUDGET_S))
    m = BenchManager(address=("127.0.0.1", 0), ctx=CTX)
    _manager = m
    m.start()
    try:
        res = RUNNERS[a.scenario](m, a)
    finally:
        for p in _children:
            if p.is_alive():
                p.kill()
                p.join(1.0)
        m.shutdown()
    signal.alarm(0)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
