#!/usr/bin/python3
"""Runs scenarios.txt against Python's multiprocessing.managers.SyncManager: the reference
behaviour that zmanager_runner.cpp is compared with.

The script language is described at the top of scenarios.txt. Both runners parse it with their
own code (no ast.literal_eval here) so that the grammar is exactly the same on both sides, and
render every result with the same canonical renderer.

Usage: python_runner.py SCENARIOS   (set CROSSCHECK_MESSAGES=1 to print error messages too)
"""

import array
import os
import queue
import re
import sys
import threading
import time
from multiprocessing.managers import BaseProxy, RemoteError, SyncManager

JOIN_TIMEOUT = 10.0  # longer than any wait in the script, so a join times out only on a hang
UNTIL_TIMEOUT = 10.0
UNTIL_POLL = 0.005
DONE_TIMEOUT = 5.0  # well below the waiters' own 10 s timeouts: "promptly"
DONE_GRACE = 0.2
SHOW_MESSAGES = os.environ.get("CROSSCHECK_MESSAGES") == "1"


class ScriptError(Exception):
    """A mistake in the script itself (not a behaviour being checked)."""


class Ref:
    """`@name`: the object created under that name."""

    def __init__(self, name):
        self.name = name


# ---- literals ----


class Parser:
    def __init__(self, text):
        self.s = text
        self.i = 0

    def ws(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, c):
        if self.peek() != c:
            raise ScriptError(f"expected {c!r} at {self.i} in {self.s!r}")
        self.i += 1

    def values_until(self, close):
        out = []
        while self.peek() != close:
            out.append(self.value())
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != close:
                raise ScriptError(f"expected ',' or {close!r} in {self.s!r}")
        self.i += 1
        return out

    def value(self):
        c = self.peek()
        if c == "[":
            self.i += 1
            return self.values_until("]")
        if c == "(":
            self.i += 1
            return tuple(self.values_until(")"))
        if c == "{":
            self.i += 1
            d = {}
            while self.peek() != "}":
                k = self.value()
                self.expect(":")
                d[k] = self.value()
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return d
        if c == "'":
            self.i += 1
            out = []
            while self.i < len(self.s) and self.s[self.i] != "'":
                if self.s[self.i] == "\\":
                    self.i += 1
                out.append(self.s[self.i])
                self.i += 1
            self.expect("'")
            return "".join(out)
        m = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?").match(
            self.s, self.i
        )
        if not m:
            raise ScriptError(f"bad literal at {self.i} in {self.s!r}")
        self.i = m.end()
        word = m.group(0)
        if word.startswith("@"):
            return Ref(word[1:])
        if word in ("None", "True", "False"):
            return {"None": None, "True": True, "False": False}[word]
        if word[0].isalpha() or word[0] == "_":
            raise ScriptError(f"unknown word {word!r} in {self.s!r}")
        if m.group(1) or m.group(2):
            return float(word)
        return int(word)


def parse_args(text):
    p = Parser(text)
    out = []
    if p.peek() == "":
        return out
    while True:
        out.append(p.value())
        if p.peek() == "":
            return out
        p.expect(",")


# ---- canonical rendering (zmanager_runner.cpp renders the same way) ----


def render(v):
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    # msgpack has no tuples and zmanager's Array slices are vectors: sequences all render as lists.
    if isinstance(v, (list, tuple, array.array)):
        return "[" + ", ".join(render(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(render(k) + ": " + render(x) for k, x in v.items()) + "}"
    if isinstance(v, BaseProxy):
        return "<proxy " + v._token.typeid + ">"
    return "<" + type(v).__name__ + ">"


def error_name(e):
    name = type(e).__name__
    if isinstance(e, RemoteError):
        # Python's manager reports a failing constructor as RemoteError with the traceback as
        # text; zmanager raises the typed error. Compare the type the traceback names.
        lines = [x for x in str(e).splitlines() if x.strip()]
        for line in reversed(lines):
            m = re.match(r"^([A-Za-z_][\w.]*)(:|$)", line)
            if m:
                name = m.group(1).rsplit(".", 1)[-1]
                break
    if SHOW_MESSAGES:
        return "!" + name + ": " + str(e)
    return "!" + name


# ---- objects and operations ----

OPS = {
    "dict": {"setitem", "getitem", "delitem", "contains", "len", "get", "pop", "popitem",
             "setdefault", "update", "clear", "copy", "keys", "values", "items"},
    "list": {"getitem", "setitem", "delitem", "slice", "len", "append", "extend", "insert", "pop",
             "remove", "index", "count", "contains", "reverse", "sort", "to_list", "add", "imul"},
    "queue": {"put", "put_nowait", "get", "get_nowait", "qsize", "empty", "full", "task_done",
              "join"},
    "lock": {"acquire", "release"},
    "semaphore": {"acquire", "release"},
    "Condition": {"acquire", "release", "wait", "notify", "notify_all"},
    "Event": {"set", "clear", "is_set", "wait"},
    "Barrier": {"wait", "abort", "reset", "parties", "n_waiting", "broken"},
    "Value": {"get", "set"},
    "Array": {"len", "getitem", "setitem", "slice", "to_list"},
    "Namespace": {"set", "get", "del", "contains"},
}
FAMILY = {"Queue": "queue", "LifoQueue": "queue", "PriorityQueue": "queue",
          "JoinableQueue": "queue", "Lock": "lock", "RLock": "lock", "Semaphore": "semaphore",
          "BoundedSemaphore": "semaphore"}


TYPES = set(FAMILY) | {"dict", "list", "Condition", "Event", "Barrier", "Value", "Array",
                      "Namespace"}


class Obj:
    def __init__(self, type_id, proxy):
        self.type_id = type_id
        self.family = FAMILY.get(type_id, type_id)
        self.proxy = proxy


def call(o, op, args):
    p = o.proxy
    if op not in OPS[o.family]:
        raise ScriptError(f"{o.type_id} has no operation {op!r}")
    if op == "getitem":
        return p[args[0]]
    if op == "setitem":
        p[args[0]] = args[1]
        return None
    if op == "delitem":
        del p[args[0]]
        return None
    if op == "contains" and o.family != "Namespace":
        return args[0] in p
    if op == "len":
        return len(p)
    if op == "slice":
        return p[args[0]:args[1]]
    if op == "to_list":
        return p[:]
    if op == "add":
        return p + args[0]
    if op == "imul":
        p *= args[0]
        return None
    if o.family == "list" and op == "sort":
        p.sort(reverse=bool(args[0]) if args else False)
        return None
    if o.family == "Barrier" and op in ("parties", "n_waiting", "broken"):
        return getattr(p, op)
    if o.family == "Namespace":
        if op == "set":
            setattr(p, args[0], args[1])
            return None
        if op == "get":
            return getattr(p, args[0])
        if op == "del":
            delattr(p, args[0])
            return None
        if op == "contains":
            return hasattr(p, args[0])
    return getattr(p, op)(*args)


class Runner:
    def __init__(self, manager):
        self.m = manager
        self.objects = {}
        self.blocks = {}  # thread name -> list of lines
        self.threads = {}  # thread name -> (Thread, log)
        self.done_cv = threading.Condition()
        self.finished = set()

    def resolve(self, v):
        if isinstance(v, Ref):
            if v.name not in self.objects:
                raise ScriptError(f"no object {v.name!r}")
            return self.objects[v.name].proxy
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if isinstance(v, tuple):
            return tuple(self.resolve(x) for x in v)
        if isinstance(v, dict):
            return {self.resolve(k): self.resolve(x) for k, x in v.items()}
        return v

    def op(self, line):
        """`NAME OP ARGS`: the rendered result (or !Error)."""
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise ScriptError(f"bad line {line!r}")
        if parts[0] not in self.objects:
            raise ScriptError(f"no object {parts[0]!r}")
        args = self.resolve(parse_args(parts[2] if len(parts) > 2 else ""))
        try:
            return render(call(self.objects[parts[0]], parts[1], args))
        except ScriptError:
            raise
        except Exception as e:  # the behaviour under test: every error is a result
            return error_name(e)

    def new(self, line):
        parts = line.split(None, 3)
        name, type_id = parts[1], parts[2]
        if type_id not in TYPES:
            raise ScriptError(f"unknown type {type_id!r}")
        args = self.resolve(parse_args(parts[3] if len(parts) > 3 else ""))
        try:
            self.objects[name] = Obj(type_id, getattr(self.m, type_id)(*args))
            return "ok"
        except Exception as e:
            return error_name(e)

    def thread_body(self, name, lines, log):
        try:
            for line in lines:
                log.append(line + " -> " + self.op(line))
        except ScriptError as e:
            log.append("script error: " + str(e))
        finally:
            with self.done_cv:
                self.finished.add(name)
                self.done_cv.notify_all()

    def start(self, name):
        if name not in self.blocks or name in self.threads:
            raise ScriptError(f"cannot start thread {name!r}")
        log = []
        t = threading.Thread(target=self.thread_body, args=(name, self.blocks[name], log),
                             daemon=True)
        self.threads[name] = (t, log)
        t.start()

    def join(self, name):
        """The thread's log, or None if it did not finish in time."""
        t, log = self.threads[name]
        t.join(JOIN_TIMEOUT)
        return None if t.is_alive() else log

    def run(self, lines, out):
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            words = line.split()
            kw = words[0]
            if kw == "thread":
                body = []
                while i < len(lines) and lines[i] != "end":
                    if lines[i].split()[0] in ("new", "thread", "start", "join", "gather",
                                                "done", "until"):
                        raise ScriptError(f"not allowed in a thread: {lines[i]!r}")
                    body.append(lines[i])
                    i += 1
                if i == len(lines):
                    raise ScriptError(f"thread {words[1]} has no end")
                i += 1
                self.blocks[words[1]] = body
            elif kw == "new":
                out(line + " -> " + self.new(line))
            elif kw == "start":
                self.start(words[1])
                out(line)
            elif kw == "join":
                log = self.join(words[1])
                out(line + (" -> timeout" if log is None else ""))
                for entry in log or []:
                    out("  " + words[1] + "| " + entry)
            elif kw == "gather":
                # Symmetric threads (barrier parties) end in any order: compare their results as
                # a sorted multiset.
                entries, late = [], []
                for name in words[1:]:
                    log = self.join(name)
                    if log is None:
                        late.append(name)
                    entries += log or []
                out(line + (" -> timeout " + " ".join(late) if late else ""))
                for entry in sorted(entries):
                    out("  *| " + entry)
            elif kw == "done":
                want, names = int(words[1]), words[2:]
                count = lambda: sum(1 for n in names if n in self.finished)
                with self.done_cv:
                    self.done_cv.wait_for(lambda: count() >= want, DONE_TIMEOUT)
                    # A thread woken by mistake would finish right after the expected ones: give
                    # it a moment to show up before counting.
                    self.done_cv.wait_for(lambda: count() > want, DONE_GRACE)
                    out(line + " -> " + str(count()))
            elif kw == "until":
                out(line + " -> " + self.until(line))
            else:
                out(line + " -> " + self.op(line))

    def until(self, line):
        """`until EXPECTED : op ; ? op ; op`: repeats the ops until the `?` one gives EXPECTED.
        What is polled is remote state nobody signals, hence the short sleeps."""
        head, _, body = line[len("until"):].partition(":")
        expected = render(self.resolve(parse_args(head))[0])
        steps = [s.strip() for s in body.split(";")]
        probes = [s for s in steps if s.startswith("?")]
        if len(probes) != 1:
            raise ScriptError(f"until needs exactly one '?' step: {line!r}")
        deadline = time.monotonic() + UNTIL_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            for s in steps:
                r = self.op(s.lstrip("?").strip())
                if s.startswith("?"):
                    last = r
            if last == expected:
                return "ok"
            time.sleep(UNTIL_POLL)
        return "timeout (last " + str(last) + ")"

    def stuck(self):
        return [n for n, (t, _) in self.threads.items() if t.is_alive()]


class Manager(SyncManager):
    """Python's SyncManager has no LifoQueue or PriorityQueue (zmanager's has): registered here
    the way a Python user would, with the same proxy as its Queue."""


Manager.register("LifoQueue", queue.LifoQueue)
Manager.register("PriorityQueue", queue.PriorityQueue)


def read_script(path):
    lines = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            s = raw.strip()
            if s and not s.startswith("#"):
                lines.append(s)
    return lines


def main():
    if len(sys.argv) != 2:
        print("usage: python_runner.py SCENARIOS", file=sys.stderr)
        return 2
    lines = read_script(sys.argv[1])
    m = Manager(address=("127.0.0.1", 0))
    m.start()
    runner = Runner(m)
    try:
        runner.run(lines, lambda s: print(s, flush=True))
    except ScriptError as e:
        print("script error: " + str(e), file=sys.stderr)
        sys.stdout.flush()
        os._exit(2)
    stuck = runner.stuck()
    if stuck:
        print("threads still running at the end: " + " ".join(stuck), flush=True)
    m.shutdown()
    sys.stdout.flush()
    # A stuck daemon thread would keep its connection; leave without waiting for it.
    os._exit(1 if stuck else 0)


if __name__ == "__main__":
    sys.exit(main())
