#!/usr/bin/python3
"""The side-by-side benchmark: runs every scenario for zmanager and its baselines (Python's
SyncManager, raw ZeroMQ, a raw Unix socket) in one invocation, alternating, several times, and
reports medians, spreads and the ratios the project's targets are stated in.

    bench/run.py --build-dir build [--reps 3] [--seconds 0.5] [--out docs/performance.md]

Each benchmark program runs one scenario per invocation and prints one JSON line (see
bench/README.md). Absolute numbers on a shared 2-core machine drift; the ratios, measured in the
same run with the order of implementations rotated between repetitions, are what to read."""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's, with the packages the baseline needs


def programs(build_dir):
    bench = os.path.join(build_dir, "bench")
    return {
        "zmanager": [os.path.join(bench, "bench_zmanager")],
        # The same program, its clients on the server's same-host transport (unix://).
        "zmanager_local": [os.path.join(bench, "bench_zmanager"), "--transport", "unix"],
        "python": [PYTHON, os.path.join(HERE, "python_bench.py")],
        "zmq": [os.path.join(bench, "bench_zmq_floor")],
        "unix": [os.path.join(bench, "bench_unix_floor")],
        "memcpy": [os.path.join(bench, "bench_memcpy_floor")],
        # A redis-server it starts itself, driven through hiredis (the scenarios with a Redis
        # equivalent: bench/README.md).
        "redis": [os.path.join(bench, "bench_redis")],
    }


# Runs: (key, scenario, extra arguments, implementations, heavy). A heavy run is slow for some
# implementation (a million dict entries, a thousand Python threads) and is repeated less.
RUNS = [
    ("sync_add", "sync_add", [], ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis"], False),
    # A unix:// client polls for its reply before it sleeps (ManagerOptions::spin_before_sleep,
    # 50 us by default): zmanager with polling off, and the Unix-socket floor with a client that
    # polls as long, to compare like with like.
    ("sync_add_no_polling", "sync_add", ["--spin", "0"], ["zmanager_local"], False),
    ("sync_add_polling", "sync_add", ["--spin", "50"], ["unix"], False),
    ("pipelined_add_w64", "pipelined_add", ["--window", "64"], ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis"], False),
    ("pipelined_add_w256", "pipelined_add", ["--window", "256"], ["zmanager", "zmanager_local", "zmq", "unix", "redis"], False),
    # The same calls sent through a zmanager::Batch (up to 32 to a message, protocol version 4).
    ("pipelined_add_w64_batch", "pipelined_add", ["--window", "64", "--batch", "on"], ["zmanager"], False),
    ("pipelined_add_w256_batch", "pipelined_add", ["--window", "256", "--batch", "on"], ["zmanager"], False),
    ("dict_set", "dict_set", [], ["zmanager", "zmanager_local", "python", "zmq", "redis"], False),
    ("dict_get", "dict_get", [], ["zmanager", "zmanager_local", "python", "zmq", "redis"], False),
    ("queue_64B", "queue_64B", [], ["zmanager", "zmanager_local", "python", "redis"], False),
    # A producer and consumer that keep 64 puts and gets in flight: what zmanager's pipelining
    # is for (Python's proxies cannot).
    ("queue_64B_w64", "queue_64B", ["--window", "64"], ["zmanager", "zmanager_local"], False),
    ("queue_64B_w64_batch", "queue_64B", ["--window", "64", "--batch", "on"], ["zmanager"], False),
    # With 256 in flight the pipeline keeps both vCPUs busy: at 64 a system profile shows a third
    # of them idle, every call waiting on the chain of thread wake-ups through both ZeroMQ I/O
    # threads.
    ("queue_64B_w256", "queue_64B", ["--window", "256"], ["zmanager", "zmanager_local"], False),
    ("queue_64B_w256_batch", "queue_64B", ["--window", "256", "--batch", "on"], ["zmanager"], False),
    ("lock_pair", "lock_pair", [], ["zmanager", "zmanager_local", "python", "zmq", "redis"], False),
    ("clients2_sync_add", "clients_sync_add", ["--clients", "2"], ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis"], False),
    ("clients4_sync_add", "clients_sync_add", ["--clients", "4"], ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis"], False),
    ("clients8_sync_add", "clients_sync_add", ["--clients", "8"], ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis"], False),
    ("clients8_window16_add", "clients_window_add", ["--clients", "8", "--window", "16"], ["zmanager", "zmanager_local", "zmq", "redis"], False),
    # zmq: a raw ZeroMQ relay holding the queue, the transport's floor for this traffic.
    ("queue_1MiB", "queue_1MiB", [], ["zmanager", "zmanager_local", "python", "zmq", "redis"], False),
    # The same with the server's segments off: a ZeroMQ client's blobs then go through TCP, as
    # they do between hosts (docs/protocol.md 1.3).
    ("queue_1MiB_no_segments", "queue_1MiB", ["--segments", "off"], ["zmanager"], False),
    ("parked_waiters", "parked_waiters", [], ["zmanager", "python"], True),
    # At 1,000 waiters the per-waiter figure is within the allocator's granularity (it swings
    # 0.4-4.9 KiB between identical runs); 10,000 gives a stable one (Python would need 10,000
    # threads: zmanager only).
    ("parked_waiters_10k", "parked_waiters", ["--items", "10000", "--clients", "8"], ["zmanager"], True),
    ("dict_1M_rss", "dict_1M_rss", [], ["zmanager", "python", "redis"], True),
    # 4K frames (3840×2160×3 bytes) between two processes: through shared memory (slot numbers
    # through managed queues, as examples/shared_memory does), against one thread's memcpy; and
    # the same frames as values through a managed queue, zmanager's and Python's.
    ("frames_4k", "frames_4k", [], ["zmanager", "memcpy"], False),
    # The floor with the producer's own copy (streaming stores): what the copy alone gains.
    ("frames_4k_streaming", "frames_4k", ["--copy", "streaming"], ["memcpy"], False),
    ("frames_4k_queue", "frames_4k_queue", [], ["zmanager", "python"], True),
]

# The targets: (label, key, baseline impl, baseline key, comparison, bound, field).
# "ge": zmanager/baseline >= bound; "le": <= bound. field: which number of the result. A key
# "run:impl" measures that implementation instead of zmanager (zmanager_local: unix://).
TARGETS = [
    ("sync add, 1 client", "sync_add", "zmq", "sync_add", "ge", 0.85, "value"),
    ("sync add vs Python (reported)", "sync_add", "python", "sync_add", None, None, "value"),
    ("pipelined add, 64 in flight, vs Python sync", "pipelined_add_w64", "python", "sync_add", "ge", 20, "value"),
    ("pipelined add, 64 in flight, vs raw ZeroMQ", "pipelined_add_w64", "zmq", "pipelined_add_w64", "ge", 0.5, "value"),
    ("pipelined add, 256 in flight, vs Python sync", "pipelined_add_w256", "python", "sync_add", "ge", 20, "value"),
    ("pipelined add, 256 in flight, vs raw ZeroMQ", "pipelined_add_w256", "zmq", "pipelined_add_w256", "ge", 0.5, "value"),
    ("pipelined add through a Batch, 64 in flight, vs Python sync", "pipelined_add_w64_batch", "python", "sync_add", "ge", 20, "value"),
    ("pipelined add through a Batch, 64 in flight, vs raw ZeroMQ", "pipelined_add_w64_batch", "zmq", "pipelined_add_w64", "ge", 0.5, "value"),
    ("pipelined add through a Batch, 256 in flight, vs raw ZeroMQ", "pipelined_add_w256_batch", "zmq", "pipelined_add_w256", "ge", 0.5, "value"),
    ("dict set vs raw ZeroMQ round trip", "dict_set", "zmq", "dict_set", "ge", 0.85, "value"),
    ("dict set vs Python (reported)", "dict_set", "python", "dict_set", None, None, "value"),
    ("dict get vs raw ZeroMQ round trip", "dict_get", "zmq", "dict_get", "ge", 0.85, "value"),
    ("dict get vs Python (reported)", "dict_get", "python", "dict_get", None, None, "value"),
    ("queue put→get, 64 B, two processes, one at a time, vs Python", "queue_64B", "python", "queue_64B", None, None, "value"),
    ("queue put→get, 64 B, two processes, 64 in flight, vs Python", "queue_64B_w64", "python", "queue_64B", "ge", 10, "value"),
    ("queue put→get, 64 B, 64 in flight, through Batches, vs Python", "queue_64B_w64_batch", "python", "queue_64B", "ge", 10, "value"),
    ("queue put→get, 64 B, two processes, 256 in flight, vs Python", "queue_64B_w256", "python", "queue_64B", "ge", 10, "value"),
    ("queue put→get, 64 B, 256 in flight, through Batches, vs Python", "queue_64B_w256_batch", "python", "queue_64B", "ge", 10, "value"),
    ("lock acquire+release vs two raw ZeroMQ round trips", "lock_pair", "zmq", "lock_pair", "ge", 0.85, "value"),
    ("8 clients sync add vs raw ZeroMQ, 8 clients", "clients8_sync_add", "zmq", "clients8_sync_add", "ge", 0.85, "value"),
    ("8 clients × 16 in flight vs Python, 8 processes", "clients8_window16_add", "python", "clients8_sync_add", "ge", 5, "value"),
    ("1 MiB items through a queue vs Python", "queue_1MiB", "python", "queue_1MiB", "ge", 3, "value"),
    ("1 MiB items through a queue vs a raw ZeroMQ relay (reported)", "queue_1MiB", "zmq", "queue_1MiB", None, None, "value"),
    ("1 MiB items: the raw ZeroMQ relay vs Python (reported)", "queue_1MiB:zmq", "python", "queue_1MiB", None, None, "value"),
    ("1 MiB items through a queue, segments off (through TCP), vs Python (reported)", "queue_1MiB_no_segments", "python", "queue_1MiB", None, None, "value"),
    ("1 MiB items through a queue, segments off, vs a raw ZeroMQ relay (reported)", "queue_1MiB_no_segments", "zmq", "queue_1MiB", None, None, "value"),
    ("1,000 parked waiters: KiB per waiter (absolute)", "parked_waiters", None, None, "le", 2.0, "value"),
    ("10,000 parked waiters: KiB per waiter (absolute)", "parked_waiters_10k", None, None, "le", 2.0, "value"),
    ("1,000 parked waiters: put→get latency with / without", "parked_waiters", None, None, "le", 1.5, "latency_ratio"),
    ("dict of 1,000,000 int→int: server RSS vs Python's", "dict_1M_rss", "python", "dict_1M_rss", "le", 0.5, "value"),
    ("4K frames through shared memory vs one thread's memcpy", "frames_4k", "memcpy", "frames_4k", "ge", 0.8, "value"),
    ("4K frames through shared memory vs one thread's streaming-store copy (reported)", "frames_4k", "memcpy", "frames_4k_streaming", None, None, "value"),
    ("4K frames through shared memory vs Python's managed queue (reported)", "frames_4k", "python", "frames_4k_queue", None, None, "value"),
    ("4K frames through a managed queue vs Python's (reported)", "frames_4k_queue", "python", "frames_4k_queue", None, None, "value"),
    # The same-host transport: a client on the server's host, over unix:// instead of ZeroMQ.
    ("unix:// sync add vs Python", "sync_add:zmanager_local", "python", "sync_add", "ge", 2, "value"),
    ("unix:// sync add vs the Unix-socket floor", "sync_add:zmanager_local", "unix", "sync_add", "ge", 0.5, "value"),
    ("unix:// sync add vs a Unix-socket floor that polls 50 µs before it blocks (reported)", "sync_add:zmanager_local", "unix", "sync_add_polling", None, None, "value"),
    ("unix:// sync add, polling off, vs Python (reported)", "sync_add_no_polling:zmanager_local", "python", "sync_add", None, None, "value"),
    ("unix:// sync add, polling off, vs the Unix-socket floor (reported)", "sync_add_no_polling:zmanager_local", "unix", "sync_add", None, None, "value"),
    ("unix:// sync add vs zmanager over ZeroMQ (reported)", "sync_add:zmanager_local", "zmanager", "sync_add", None, None, "value"),
    ("unix:// pipelined add, 256 in flight, vs the Unix-socket floor (reported)", "pipelined_add_w256:zmanager_local", "unix", "pipelined_add_w256", None, None, "value"),
    ("unix:// dict get vs Python (reported)", "dict_get:zmanager_local", "python", "dict_get", None, None, "value"),
    ("unix:// lock acquire+release vs Python (reported)", "lock_pair:zmanager_local", "python", "lock_pair", None, None, "value"),
    ("unix:// 8 clients sync add vs the Unix-socket floor, 8 clients (reported)", "clients8_sync_add:zmanager_local", "unix", "clients8_sync_add", None, None, "value"),
    ("unix:// 8 clients sync add vs Python, 8 processes (reported)", "clients8_sync_add:zmanager_local", "python", "clients8_sync_add", None, None, "value"),
    ("unix:// queue put→get, 64 B, 64 in flight, vs Python", "queue_64B_w64:zmanager_local", "python", "queue_64B", "ge", 10, "value"),
    ("unix:// 1 MiB items through a queue vs Python", "queue_1MiB:zmanager_local", "python", "queue_1MiB", "ge", 3, "value"),
    # Redis, where a scenario has an equivalent (bench_redis: INCRBY for add, HSET/HGET, SET NX +
    # DEL, RPUSH/BLPOP), over TCP as zmanager's ZeroMQ clients are.
    ("sync add vs Redis INCRBY (reported)", "sync_add", "redis", "sync_add", None, None, "value"),
    ("unix:// sync add vs Redis INCRBY (reported)", "sync_add:zmanager_local", "redis", "sync_add", None, None, "value"),
    ("pipelined add, 256 in flight, vs Redis, 256 in flight (reported)", "pipelined_add_w256", "redis", "pipelined_add_w256", None, None, "value"),
    ("dict get vs Redis HGET (reported)", "dict_get", "redis", "dict_get", None, None, "value"),
    ("lock acquire+release vs Redis SET NX + DEL (reported)", "lock_pair", "redis", "lock_pair", None, None, "value"),
    ("8 clients sync add vs Redis, 8 clients (reported)", "clients8_sync_add", "redis", "clients8_sync_add", None, None, "value"),
    ("unix:// 8 clients sync add vs Redis, 8 clients (reported)", "clients8_sync_add:zmanager_local", "redis", "clients8_sync_add", None, None, "value"),
    ("8 clients × 16 in flight vs Redis, 8 clients × 16 (reported)", "clients8_window16_add", "redis", "clients8_window16_add", None, None, "value"),
    ("queue put→get, 64 B, one at a time, vs Redis RPUSH/BLPOP (reported)", "queue_64B", "redis", "queue_64B", None, None, "value"),
    ("1 MiB items through a queue vs Redis (reported)", "queue_1MiB", "redis", "queue_1MiB", None, None, "value"),
    ("unix:// 1 MiB items through a queue vs Redis (reported)", "queue_1MiB:zmanager_local", "redis", "queue_1MiB", None, None, "value"),
    ("dict of 1,000,000 int→int: server RSS vs Redis's (reported)", "dict_1M_rss", "redis", "dict_1M_rss", None, None, "value"),
]


# CPU per call, counted by callgrind: the user-space instructions of every process of a run
# (client, server, their ZeroMQ I/O threads; not the kernel's) per call. Unlike the rates above
# they hardly move with this machine's regime, in which a one-at-a-time call's time is mostly
# waking threads: they say what the code costs. (label, zmanager's run, raw ZeroMQ's run), a
# run being (scenario, extra arguments).
W64 = ["--window", "64"]
CPU_RUNS = [
    ("sync add", ("sync_add", []), ("sync_add", [])),
    ("pipelined add, 64 in flight", ("pipelined_add", W64), ("pipelined_add", W64)),
    ("pipelined add through a Batch, 64 in flight", ("pipelined_add", W64 + ["--batch", "on"]),
     ("pipelined_add", W64)),
]


def instructions(cmd, scenario, extra, seconds):
    """(instructions, calls) of one run under callgrind, every process's files summed."""
    with tempfile.TemporaryDirectory() as d:
        valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(d, "cg.%p")]
        result = run_one(valgrind + cmd, scenario, extra, seconds, 300)
        if "error" in result or "n" not in result:
            raise RuntimeError(result.get("error", "no call count in the result"))
        total = 0
        for name in os.listdir(d):
            with open(os.path.join(d, name)) as f:
                total += next(int(l.split()[1]) for l in f if l.startswith(("summary:", "totals:")))
        return total, result["n"]


def instructions_per_call(cmd, scenario, extra):
    """The difference between a longer and a shorter run, so that what a run costs whatever its
    length (starting processes, the handshake) cancels out."""
    short_i, short_n = instructions(cmd, scenario, extra, 1)
    long_i, long_n = instructions(cmd, scenario, extra, 2.5)
    if long_n <= short_n:
        raise ValueError(f"the longer run made no more calls ({long_n}) than the shorter ({short_n})")
    return (long_i - short_i) / (long_n - short_n)


def cpu_table(progs):
    if not shutil.which("valgrind"):
        return ["valgrind is not installed (`scripts/setup --bench` installs it): no instruction counts."]
    measured = {}  # (impl, scenario, extra) -> instructions per call, or None

    def count(impl, run):
        scenario, extra = run
        k = (impl, scenario, tuple(extra))
        if k not in measured:
            try:
                measured[k] = instructions_per_call(progs[impl], scenario, extra)
            except (RuntimeError, ValueError, StopIteration) as e:
                print(f"  callgrind {impl} {scenario} {' '.join(extra)}: {e}", file=sys.stderr)
                measured[k] = None
            print(f"  callgrind {impl:14} {scenario} {' '.join(extra):28} {fmt(measured[k])}",
                  file=sys.stderr, flush=True)
        return measured[k]

    rows = ["| calls | zmanager | raw ZeroMQ (no Batch) | zmanager / raw ZeroMQ |", "|---|---:|---:|---:|"]
    for label, zrun, brun in CPU_RUNS:
        z, b = count("zmanager", zrun), count("zmq", brun)
        ratio = f"{fmt(z / b)}×" if z and b else ""
        rows.append(f"| {label} | {fmt(z)} | {fmt(b)} | {ratio} |")
    return rows


def run_one(cmd, scenario, extra, seconds, timeout):
    argv = cmd + ["--scenario", scenario, "--seconds", str(seconds)] + extra
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % timeout}
    except OSError as e:
        return {"error": str(e)}
    for line in reversed(out.stdout.splitlines()):
        try:
            result = json.loads(line)
        except ValueError:
            continue
        if out.returncode != 0:
            result["error"] = "exit %d" % out.returncode
        return result
    return {"error": "exit %d: %s" % (out.returncode, out.stderr.strip()[-300:])}


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "performance.md"))
    ap.add_argument("--chart", default=os.path.join(HERE, "..", "docs", "performance.png"))
    ap.add_argument("--only", help="comma-separated run keys")
    args = ap.parse_args()
    progs = programs(args.build_dir)
    runs = [r for r in RUNS if not args.only or r[0] in args.only.split(",")]

    results = {}  # (key, impl) -> list of result dicts
    for rep in range(args.reps):
        for key, scenario, extra, impls, heavy in runs:
            if heavy and rep > 0:
                continue
            shift = rep % len(impls)  # rotate who goes first, so drift spreads evenly
            for impl in impls[shift:] + impls[:shift]:
                r = run_one(progs[impl], scenario, extra, args.seconds, 120 if heavy else 60)
                results.setdefault((key, impl), []).append(r)
                status = r.get("error") or ("unsupported" if r.get("unsupported") else fmt(r.get("value")))
                print(f"  rep {rep + 1}/{args.reps} {key:24} {impl:14} {status}", file=sys.stderr, flush=True)

    def values(key, impl, field="value"):
        return [r[field] for r in results.get((key, impl), []) if field in r and "error" not in r]

    def median(key, impl, field="value"):
        v = values(key, impl, field)
        return statistics.median(v) if v else None

    def spread(key, impl, field="value"):
        v = values(key, impl, field)
        return (min(v), max(v)) if v else None

    def paired_ratios(key, impl, bkey, bimpl, field):
        """zmanager/baseline within each repetition: both ran minutes apart at most, so a machine
        whose speed changes between repetitions (this one's sync round trips swing 3-4x) moves
        both alike; a ratio of medians taken from different repetitions would not."""
        def by_rep(k, i):
            return [r.get(field) if "error" not in r else None for r in results.get((k, i), [])]
        return [z / b for z, b in zip(by_rep(key, impl), by_rep(bkey, bimpl)) if z is not None and b]

    # The raw table: every run, every implementation.
    impls_all = ["zmanager", "zmanager_local", "python", "zmq", "unix", "redis", "memcpy"]
    raw = ["| run | unit | " + " | ".join(impls_all) + " |", "|---|---|" + "---:|" * len(impls_all)]
    for key, scenario, extra, impls, heavy in runs:
        unit = next((r.get("unit") for rs in (results.get((key, i), []) for i in impls) for r in rs if r.get("unit")), "")
        cells = []
        for impl in impls_all:
            m = median(key, impl)
            s = spread(key, impl)
            if m is None:
                errs = [r.get("error") for r in results.get((key, impl), []) if r.get("error")]
                cells.append("error" if errs else "")
            else:
                cells.append(fmt(m) + (f" ({fmt(s[0])}–{fmt(s[1])})" if s and s[0] != s[1] else ""))
        raw.append(f"| {key} | {unit} | " + " | ".join(cells) + " |")

    # The targets: ratio of zmanager to its baseline, met or not.
    # zmanager and baseline: medians over the repetitions; ratio: the median (and range) of the
    # ratios within each repetition.
    tgt = ["| target | zmanager | baseline | ratio (range) | wanted | met |", "|---|---:|---:|---:|---:|:---:|"]
    for label, key, bimpl, bkey, cmp, bound, field in TARGETS:
        key, _, zimpl = key.partition(":")
        zimpl = zimpl or "zmanager"
        z = median(key, zimpl, field)
        ratio_spread = ""
        if bimpl:
            b = median(bkey, bimpl, field)
            ratios = paired_ratios(key, zimpl, bkey, bimpl, field)
            ratio = statistics.median(ratios) if ratios else None
            if len(ratios) > 1:
                ratio_spread = f" ({fmt(min(ratios))}–{fmt(max(ratios))})"
            base = f"{fmt(b)} ({bimpl})" if b is not None else "—"
        else:
            b, ratio, base = None, z, "—"
        if cmp is None or ratio is None:
            met = "" if cmp is None else "?"
        else:
            met = "yes" if (ratio >= bound if cmp == "ge" else ratio <= bound) else "**no**"
        wanted = "" if cmp is None else ("≥ " if cmp == "ge" else "≤ ") + fmt(bound) + ("×" if bimpl else "")
        tgt.append(f"| {label} | {fmt(z)} | {base} | {fmt(ratio)}{'×' if bimpl and ratio is not None else ''}"
                   f"{ratio_spread} | {wanted} | {met} |")

    cpu = cpu_table(progs) if not args.only else ["not measured in a run limited by --only"]

    print("\n".join(tgt))
    print()
    print("\n".join(raw))
    print()
    print("\n".join(cpu))

    machine = f"{platform.node()}: {os.cpu_count()} CPUs, Linux {platform.release()}"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
        machine += f", {model}"
    except OSError:
        pass
    chart_note = draw_chart(args.chart, median) if args.chart else "no chart requested"
    notes_path = os.path.join(HERE, "performance_notes.md")
    notes = open(notes_path).read() if os.path.exists(notes_path) else ""
    with open(args.out, "w") as f:
        f.write("# Performance: zmanager side by side with Python's managers, Redis and the transport "
                "floors\n\n")
        f.write("Generated by `./scripts/bench` (bench/run.py) on "
                f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, {machine}; "
                f"{args.reps} repetitions of {args.seconds} s per run (heavy runs once), medians with "
                "(min–max) spreads, implementations alternating. Absolute numbers on this shared machine "
                "drift from run to run; each ratio is the median of the ratios measured within one "
                "repetition (zmanager and its baseline seconds apart), with their range.\n\n")
        f.write("## Targets (issue 4)\n\n" + "\n".join(tgt) + "\n\n")
        f.write("## Every run\n\n" + "\n".join(raw) + "\n\n")
        f.write("## CPU per call\n\nUser-space instructions per call, every process of the run together "
                "(client, server and their ZeroMQ I/O threads; the kernel's are not counted), counted by "
                "callgrind: the difference between a 2.5 s and a 1 s run over the difference in calls, "
                "so that starting up cancels out.\n\n" + "\n".join(cpu) + "\n\n")
        f.write(f"![calls/s against calls in flight and client processes]({os.path.basename(args.chart)})\n\n"
                if chart_note is None else f"Chart: {chart_note}\n\n")
        f.write(notes)
    print(f"\nwrote {os.path.relpath(args.out)}" + (f" and {os.path.relpath(args.chart)}" if chart_note is None else ""))


def draw_chart(path, median):
    """calls/s against calls in flight and against client processes; None when drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (scripts/setup --bench installs python3-matplotlib)"
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for impl, style in (("zmanager", "o-"), ("zmanager_local", "o-"), ("python", "s--"), ("zmq", "^-."),
                        ("unix", "d:"), ("redis", "v-.")):
        xs, ys = [], []
        for window, key in ((1, "sync_add"), (64, "pipelined_add_w64"), (256, "pipelined_add_w256")):
            v = median(key, impl)
            if v is not None:
                xs.append(window), ys.append(v)
        if xs:
            a.plot(xs, ys, style, label=impl)
        xs, ys = [], []
        for n, key in ((1, "sync_add"), (2, "clients2_sync_add"), (4, "clients4_sync_add"), (8, "clients8_sync_add")):
            v = median(key, impl)
            if v is not None:
                xs.append(n), ys.append(v)
        if xs:
            b.plot(xs, ys, style, label=impl)
    a.set(xscale="log", yscale="log", xlabel="calls in flight (1 client)", ylabel="calls/s",
          title="pipelining")
    b.set(yscale="log", xlabel="client processes (synchronous calls)", ylabel="calls/s (aggregate)",
          title="client processes")
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


if __name__ == "__main__":
    main()
