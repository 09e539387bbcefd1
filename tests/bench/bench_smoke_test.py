#!/usr/bin/env python3
"""Smoke test of the benchmark's programs (bench/README.md): each scenario they share, run for a
tenth of a second, must exit 0 and print one JSON line with a positive value (or `unsupported`
where the program has no equivalent), so that a change that breaks a baseline or a scenario is
caught here rather than in the next benchmark run. Speed is not checked: that is the benchmark's.

    bench_smoke_test.py BENCH_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

SECONDS = "0.1"
TIMEOUT_S = 90  # a run this long is hung: the programs' own watchdogs fire well before

# (program, extra arguments, scenario, scenario arguments, "value" or "unsupported")
CASES = [
    ("bench_zmanager", [], "sync_add", [], "value"),
    ("bench_zmanager", [], "pipelined_add", ["--window", "8"], "value"),
    ("bench_zmanager", [], "pipelined_add", ["--window", "8", "--batch", "on"], "value"),
    ("bench_zmanager", [], "dict_get", [], "value"),
    ("bench_zmanager", [], "lock_pair", [], "value"),
    ("bench_zmanager", [], "queue_64B", ["--window", "8"], "value"),
    ("bench_zmanager", [], "queue_1MiB", [], "value"),
    ("bench_zmanager", ["--segments", "off"], "queue_1MiB", [], "value"),
    ("bench_zmanager", [], "clients_sync_add", ["--clients", "2"], "value"),
    ("bench_zmanager", [], "clients_window_add", ["--clients", "2", "--window", "4"], "value"),
    ("bench_zmanager", [], "parked_waiters", ["--items", "40", "--clients", "2"], "value"),
    ("bench_zmanager", [], "frames_4k", [], "value"),
    ("bench_zmanager", ["--transport", "unix"], "sync_add", [], "value"),
    ("bench_zmanager", ["--transport", "unix"], "queue_1MiB", [], "value"),
    ("bench_zmanager", ["--transport", "unix", "--spin", "0"], "sync_add", [], "value"),
    ("bench_zmq_floor", [], "sync_add", [], "value"),
    ("bench_zmq_floor", [], "pipelined_add", ["--window", "8"], "value"),
    ("bench_zmq_floor", [], "clients_sync_add", ["--clients", "2"], "value"),
    ("bench_zmq_floor", [], "queue_1MiB", [], "value"),
    ("bench_zmq_floor", ["--client-work", "100", "--client-touch", "4096", "--server-work", "100",
                         "--server-syscalls", "1", "--work-after-send"], "clients_sync_add",
     ["--clients", "2"], "value"),
    ("bench_zmq_floor", ["--client-code", "64", "--client-chase", "64", "--server-code", "64",
                         "--server-chase", "64", "--server-touch", "4096"], "clients_sync_add",
     ["--clients", "2"], "value"),
    ("bench_zmq_floor", ["--server-loop-epoll"], "clients_sync_add", ["--clients", "2"], "value"),
    ("bench_zmq_floor", ["--server-loop-epoll", "--server-code", "16"], "sync_add", [], "value"),
    ("bench_zmq_floor", [], "dict_1M_rss", [], "unsupported"),
    ("bench_unix_floor", [], "sync_add", [], "value"),
    ("bench_unix_floor", [], "clients_sync_add", ["--clients", "2"], "value"),
    ("bench_unix_floor", ["--spin", "50"], "sync_add", [], "value"),
    ("bench_unix_floor", [], "queue_1MiB", [], "unsupported"),
    ("bench_memcpy_floor", [], "frames_4k", [], "value"),
    ("bench_memcpy_floor", ["--copy", "streaming"], "frames_4k", [], "value"),
    # Built only where hiredis is (scripts/setup --bench); skipped, and said so, elsewhere.
    ("bench_redis", [], "sync_add", [], "value"),
    ("bench_redis", [], "pipelined_add", ["--window", "8"], "value"),
    ("bench_redis", [], "lock_pair", [], "value"),
    ("bench_redis", [], "queue_64B", [], "value"),
    ("bench_redis", [], "queue_1MiB", [], "value"),
    ("bench_redis", [], "clients_window_add", ["--clients", "2", "--window", "4"], "value"),
    ("bench_redis", [], "frames_4k", [], "unsupported"),
]


def run(bench_dir, program, extra, scenario, args, expect):
    path = os.path.join(bench_dir, program)
    argv = [path] + extra + ["--scenario", scenario, "--seconds", SECONDS] + args
    out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    where = " ".join(argv[1:])
    if out.returncode != 0:
        return f"{program} {where}: exit {out.returncode}: {out.stderr.strip()[-400:]}"
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if len(lines) != 1:
        return f"{program} {where}: {len(lines)} JSON lines, not one: {out.stdout[-400:]!r}"
    result = json.loads(lines[0])
    if result.get("scenario") != scenario:
        return f"{program} {where}: the line is for scenario {result.get('scenario')!r}"
    if expect == "unsupported":
        return None if result.get("unsupported") is True else f"{program} {where}: not unsupported"
    value = result.get("value")
    if not isinstance(value, (int, float)) or not value > 0:
        return f"{program} {where}: no positive value in {lines[0]}"
    return None


CODE_LINES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                          "code_lines.py")


def code_lines(bench_dir, impl):
    """bench/code_lines.py on a short sync_add: a table with a row per busy thread, the client's
    own thread first, running some of the program's own code and libzmq's every call."""
    argv = [sys.executable, CODE_LINES, "--build-dir", os.path.dirname(os.path.abspath(bench_dir)),
            "--impl", impl, "--scenario", "sync_add", "--seconds", "0.3"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    if out.returncode != 0:
        return f"code_lines.py --impl {impl}: exit {out.returncode}: {out.stderr.strip()[-400:]}"
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d,]+) \| (\d+) \| (.*) \|$", out.stdout, re.M)
    if len(rows) < 3:
        return f"code_lines.py --impl {impl}: {len(rows)} thread rows, not 3 or more: {out.stdout}"
    program = "bench_zmanager" if impl == "zmanager" else "bench_zmq_floor"
    first = rows[0]
    if int(first[2].replace(",", "")) <= 0 or "libzmq" not in first[4] or program not in first[4]:
        return f"code_lines.py --impl {impl}: the first thread's row is not a client's: {first}"
    if impl == "zmanager":  # its client processes start with exec, which callgrind misses
        refused = subprocess.run([sys.executable, CODE_LINES, "--build-dir", "unused", "--impl",
                                  impl, "--scenario", "clients_sync_add"], capture_output=True,
                                 text=True, timeout=TIMEOUT_S)
        if refused.returncode != 2 or "exec" not in refused.stderr:
            return f"code_lines.py: clients_sync_add not refused: {refused.stderr.strip()}"
    return None


def main():
    bench_dir = sys.argv[1]
    failures, ran, skipped = [], 0, set()
    for program, extra, scenario, args, expect in CASES:
        if not os.path.exists(os.path.join(bench_dir, program)):
            if program != "bench_redis":  # the only optional one
                failures.append(f"{program} was not built")
            skipped.add(program)
            continue
        error = run(bench_dir, program, extra, scenario, args, expect)
        ran += 1
        print(("FAIL " + error) if error else f"ok   {program} {' '.join(extra)} {scenario} {' '.join(args)}")
        if error:
            failures.append(error)
    if shutil.which("valgrind"):
        for impl in ("zmanager", "zmq"):
            error = code_lines(bench_dir, impl)
            ran += 1
            print(("FAIL " + error) if error else f"ok   code_lines.py --impl {impl} sync_add")
            if error:
                failures.append(error)
    else:
        print("skipped code_lines.py: valgrind is not installed here (scripts/setup --bench)")
    for program in sorted(skipped):
        print(f"skipped {program}: not built here")
    print(f"{ran} runs, {len(failures)} failed")
    return 1 if failures or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
