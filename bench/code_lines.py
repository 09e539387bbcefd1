#!/usr/bin/python3
"""Code run per call, by thread: for one scenario of one implementation, the user-space
instructions and the distinct 64-byte lines of machine code each thread of each process runs per
call, counted by callgrind (valgrind, which `scripts/setup --bench` installs).

    bench/code_lines.py --build-dir build-bench [--impl zmanager] [--scenario sync_add]
                        [--seconds 1] [-- extra arguments of the scenario]

Like the CPU table of bench/run.py, these counts do not move with the host, so they show what a
change to the code costs or saves where timed rounds cannot tell it from noise. The lines are the
code's footprint: run after a context switch, each is fetched again (docs/performance.md, the
nineteenth day). Both figures come from the difference between a run of --seconds and one of 2.5
times as long, over the difference in calls, so that starting processes and the handshake cancel
out. That difference is taken per process, line by line, and each line's share is given to the
threads that ran it in the longer run, in proportion: which of a server's pool threads does the
polling differs from one run to the next, so threads cannot be matched by number. A line counts
for a thread when its most-run instruction ran there at least once every other call.

Only processes this program starts or forks run under callgrind: zmanager's client processes,
which the multi-client scenarios start with exec, do not, so those scenarios are refused."""
import argparse
import collections
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's programs and its way of running one scenario)

LINE_BYTES = 64
EXEC_SCENARIOS = {"clients_sync_add", "clients_window_add", "queue_64B", "queue_1MiB",
                  "frames_4k", "frames_4k_queue", "parked_waiters"}


def parse(path):
    """{(object, line): (runs of its most-run instruction, instructions run in it)} of one
    callgrind file written with --dump-instr=yes."""
    names, obj, addr, after_call = {}, "?", 0, False
    per_instr = collections.defaultdict(int)

    def name_of(spec):  # "(3) /usr/lib/libzmq.so" defines id 3; "(3)" refers to it
        m = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                obj = os.path.basename(name_of(line[3:].strip()))
            elif line.startswith("cob="):
                name_of(line[4:].strip())
            elif line.startswith("calls="):
                after_call = True  # the next cost line is the call's inclusive cost
            elif line[:1] in "0123456789+-*" and line.strip():
                parts = line.split()
                a = parts[0]
                if a.startswith("0x"):
                    addr = int(a, 16)
                elif a[0] in "+-":
                    step = int(a[1:], 16) if a[1:].startswith("0x") else int(a[1:])
                    addr += step if a[0] == "+" else -step
                if after_call:
                    after_call = False
                elif len(parts) >= 3:
                    per_instr[(obj, addr)] += int(parts[2])
    lines = {}  # (object, line) -> (runs of its most-run instruction, instructions run in it)
    for (o, a), n in per_instr.items():
        key = (o, a // LINE_BYTES)
        most, summed = lines.get(key, (0, 0))
        lines[key] = (max(most, n), summed + n)
    return lines


def measure(cmd, scenario, extra, seconds):
    """(calls, {(process number, thread number): parse()}) of one run under callgrind."""
    with tempfile.TemporaryDirectory() as d:
        valgrind = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--separate-threads=yes",
                    "--callgrind-out-file=" + os.path.join(d, "cg.%p")]
        result = run.run_one(valgrind + cmd, scenario, extra, seconds, 600)
        if "error" in result or "n" not in result:
            raise RuntimeError(result.get("error", "no call count in the result"))
        files = {}
        for name in os.listdir(d):
            m = re.fullmatch(r"cg\.(\d+)-(\d+)", name)
            if m:
                files[(int(m.group(1)), int(m.group(2)))] = os.path.join(d, name)
        pids = sorted({pid for pid, _ in files})
        return result["n"], {(pids.index(pid) + 1, thread): parse(path)
                             for (pid, thread), path in files.items()}


def summed(run, process):
    """{line: [runs, instructions]} of one process of a run: its threads' counts added."""
    sums = collections.defaultdict(lambda: [0, 0])
    for (p, _), lines in run.items():
        if p == process:
            for line, (most, instructions) in lines.items():
                sums[line][0] += most
                sums[line][1] += instructions
    return sums


def per_call(short, long, calls, long_n):
    """{(process, thread): (instructions per call, [lines run every other call])}: the difference
    of the two runs, per process and line, shared among the threads that ran the line."""
    result = {}
    for process in sorted({p for p, _ in long}):
        before, after = summed(short, process), summed(long, process)
        for key in sorted(k for k in long if k[0] == process):
            lines = long[key]
            instructions = sum((after[line][1] - before[line][1]) * own / after[line][1]
                               for line, (_, own) in lines.items() if after[line][1])
            ran = [line for line, (most, _) in lines.items()
                   if most >= long_n / 2 and after[line][0] - before[line][0] >= calls / 2]
            result[key] = (instructions / calls, ran)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--impl", default="zmanager", help="zmanager, zmanager_local or zmq")
    ap.add_argument("--scenario", default="sync_add")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("extra", nargs="*", help="the scenario's own arguments, after --")
    a = ap.parse_args()
    progs = run.programs(a.build_dir)
    if a.impl not in ("zmanager", "zmanager_local", "zmq"):
        ap.error(f"--impl must be zmanager, zmanager_local or zmq, not {a.impl!r}")
    if a.scenario in EXEC_SCENARIOS and a.impl != "zmq":
        ap.error(f"{a.scenario}: zmanager starts its clients with exec, which callgrind does not "
                 "follow here; use a one-client scenario")
    if not os.path.exists(progs[a.impl][0]):
        ap.error(f"{progs[a.impl][0]} is not built")
    short_n, short = measure(progs[a.impl], a.scenario, a.extra, a.seconds)
    long_n, long = measure(progs[a.impl], a.scenario, a.extra, 2.5 * a.seconds)
    if long_n <= short_n:
        sys.exit(f"the longer run made no more calls ({long_n}) than the shorter ({short_n})")
    calls = long_n - short_n
    print(f"{a.impl} {a.scenario} {' '.join(a.extra)}: {calls} calls between the two runs")
    print("| process | thread | instructions per call | code lines per call | by object |")
    print("|---:|---:|---:|---:|---|")
    for key, (instructions, ran) in per_call(short, long, calls, long_n).items():
        if instructions < 10:
            continue  # a thread that does nothing per call (a reaper, an idle worker)
        by_object = collections.Counter(o for o, _ in ran)
        objects = ", ".join(f"{o} {n}" for o, n in by_object.most_common())
        print(f"| {key[0]} | {key[1]} | {instructions:,.0f} | {len(ran)} | {objects} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
