"""Shared pieces of the long tests: kestrel processes, HTTP, /proc, statistics, markdown.

Python 3.11 standard library only. Every process this module starts gets PR_SET_PDEATHSIG
(SIGKILL), so nothing outlives the driver even when the driver itself is SIGKILLed by the
stage's timeout; the driver also stops them in `finally` blocks.
"""

import base64
import ctypes
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1

FINAL_STATES = {"SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED", "SKIPPED", "RETRIED"}


def log(msg):
    """A progress line on stderr (never a secret value)."""
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha(value):
    return hashlib.sha256(value.encode()).hexdigest()


def install_sigterm_handler():
    """SIGTERM (the stage's `timeout`) unwinds through the `finally` blocks."""

    def handler(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Env:
    """The environment every kestrel command of one stage shares: a scratch HOME, a master
    key, a configuration file and a data directory."""

    def __init__(self, binary, work, config_text, database=None):
        self.binary = binary
        self.work = work
        self.data = os.path.join(work, "data")
        os.makedirs(self.data, exist_ok=True)
        os.makedirs(os.path.join(work, "home"), exist_ok=True)
        self.config = os.path.join(work, "kestrel.yml")
        with open(self.config, "w") as f:
            f.write(config_text)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KESTREL_", "SECRET_", "ENV_"))
        }
        env.update(
            HOME=os.path.join(work, "home"),
            XDG_CONFIG_HOME=os.path.join(work, "home", ".config"),
            XDG_DATA_HOME=os.path.join(work, "home", ".local", "share"),
            KESTREL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
            KESTREL_CONFIG=self.config,
            KESTREL_DATA_DIR=self.data,
            USER="long-tests",
        )
        if database:
            env["KESTREL_DATABASE"] = database
        env.pop("RUST_LOG", None)
        self.env = env

    def cli(self, *args, stdin=None, timeout=120, check=True):
        r = subprocess.run(
            [self.binary, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=timeout,
            preexec_fn=_die_with_parent,
        )
        if check and r.returncode != 0:
            raise RuntimeError(
                f"kestrel {args[0]} {args[1] if len(args) > 1 else ''} exited {r.returncode}: "
                + r.stderr.decode(errors="replace")[-2000:]
            )
        return r

    def token(self, name="long-tests"):
        r = self.cli("tokens", "create", name, "--secrets", "write")
        return r.stdout.decode().strip()


class Node:
    """One kestrel process (`server` or `worker`) that can be SIGKILLed and started again."""

    def __init__(self, env, name, args, port=None):
        self.env = env
        self.name = name
        self.args = args
        self.port = port
        self.proc = None
        self.incarnation = 0
        self.logs = []

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        self.incarnation += 1
        path = os.path.join(self.env.work, f"{self.name}-{self.incarnation}.log")
        self.logs.append(path)
        logf = open(path, "wb")
        argv = [self.env.binary, *self.args]
        self.proc = subprocess.Popen(
            argv,
            env=self.env.env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        logf.close()
        self.started_at = time.monotonic()
        return self.proc.pid

    def wait_ready(self, timeout=60):
        """For a server: until GET /health answers 200. Returns the monotonic time of the first
        answer, or None when the process died or the deadline passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return None
            try:
                status, _ = http_request("127.0.0.1", self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.05)
        return None

    def kill(self):
        """SIGKILL and reap; returns the monotonic time just before the signal was sent."""
        sent = time.monotonic()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()
        return sent

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code (negative: a signal)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed after timeout"
        return self.proc.returncode

    def log_tail(self, n=30):
        if not self.logs:
            return ""
        try:
            with open(self.logs[-1], "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


def http_request(host, port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Api:
    """A keep-alive HTTP client of the server's API, one per thread."""

    def __init__(self, port, token, timeout=15):
        self.port = port
        self.auth = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, content_type=None):
        headers = dict(self.auth)
        if content_type:
            headers["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection the server closed between requests: one fresh retry,
                # but only for a request the server cannot have acted on twice (idempotent ones).
                self.close()
                if attempt == 2 or method not in ("GET", "PUT"):
                    raise
            except Exception:
                self.close()
                raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def json(self, method, path, body=None, content_type=None):
        status, data = self.request(method, path, body, content_type)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return status, doc, data

    def create_flow(self, yaml_text):
        return self.json("POST", "/api/v1/main/flows", yaml_text, "application/x-yaml")

    def trigger(self, namespace, flow_id):
        return self.json(
            "POST", f"/api/v1/main/executions/{namespace}/{flow_id}", "{}", "application/json"
        )

    def execution(self, execution_id):
        return self.json("GET", f"/api/v1/main/executions/{execution_id}")

    def put_secret(self, namespace, key, value):
        body = json.dumps({"key": key, "value": value})
        return self.json(
            "PUT", f"/api/v1/main/namespaces/{namespace}/secrets", body, "application/json"
        )


# ---------------------------------------------------------------------------------------------
# /proc


def proc_stats():
    """(pid, fields) of every process, fields being /proc/PID/stat after the command name:
    state, ppid, ... (fields[0] is the state, fields[1] the ppid, fields[19] the start time)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        yield int(name), stat[stat.rfind(")") + 2 :].split()


def proc_table():
    """pid -> (ppid, starttime, state) of every process."""
    return {pid: (int(rest[1]), int(rest[19]), rest[0]) for pid, rest in proc_stats()}


def descendants(pid):
    """[(pid, starttime)] of every live descendant of pid."""
    table = proc_table()
    children = {}
    for p, (pp, _, _) in table.items():
        children.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append((c, table[c][1]))
            todo.append(c)
    return out


def still_alive(procs):
    """The (pid, starttime) of procs still running (zombies count as gone)."""
    table = proc_table()
    return [
        (p, s) for p, s in procs if p in table and table[p][1] == s and table[p][2] not in "ZX"
    ]


def marked_processes(marker):
    """(pid, cmdline) of live processes whose command line or environment holds marker."""
    found = []
    needle = marker.encode()
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            if state in (b"Z", b"X"):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
            hit = needle in cmd
            if not hit:
                try:
                    with open(f"/proc/{name}/environ", "rb") as f:
                        hit = needle in f.read()
                except OSError:
                    pass
            if hit:
                found.append((int(name), cmd.replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            continue
    return found


def status_kib(pid, fields=("VmRSS", "RssAnon", "RssFile", "RssShmem")):
    """Several /proc/<pid>/status sizes (KiB) at once: {field: value}."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in fields:
                    out[name] = int(line.split()[1])
    except OSError:
        pass
    return out


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_files(path):
    """Every file and folder under path (relative), or [] when it does not exist."""
    out = []
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(root, n), path))
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# numbers and markdown


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ms(x):
    return "n/a" if x != x else f"{x * 1000:.1f} ms"


class Checks:
    def __init__(self):
        self.items = []

    def add(self, name, ok, detail=""):
        self.items.append((name, bool(ok), detail))
        log(f"check {'PASS' if ok else 'FAIL'}: {name} {detail}")

    @property
    def ok(self):
        return all(ok for _, ok, _ in self.items)

    def markdown(self):
        lines = ["| check | result | detail |", "|---|---|---|"]
        for name, ok, detail in self.items:
            lines.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {md_cell(detail)} |")
        return "\n".join(lines)


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(md_cell(c) for c in r) + " |")
    return "\n".join(lines)


def write_summary(path, text):
    with open(path, "w") as f:
        f.write(text.rstrip() + "\n")


class Stopper:
    """A flag worker threads poll, with an interruptible sleep."""

    def __init__(self):
        self.event = threading.Event()

    def stopped(self):
        return self.event.is_set()

    def sleep(self, seconds):
        return self.event.wait(seconds)

    def stop(self):
        self.event.set()


class CpuSampler:
    """Every `interval` seconds: how many cores the processes *outside* this test (not the
    driver nor its descendants: the other users of the machine, a compiler for instance) used
    since the last sample. Latency measured while they took the CPU says little about kestrel,
    which runs at nice 10. Conservative: a foreign process that ended between two samples does
    not count for its last interval."""

    def __init__(self, interval=0.5):
        self.interval = interval
        self.samples = []  # (monotonic end of window, foreign cores, our cores)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)

    @staticmethod
    def _cpu_times():
        times = {}
        parents = {}
        for pid, rest in proc_stats():
            parents[pid] = int(rest[1])
            times[(pid, int(rest[19]))] = int(rest[11]) + int(rest[12])
        return times, parents

    def _ours(self, parents):
        me = os.getpid()
        ours = set()
        for pid in parents:
            p, seen = pid, 0
            while p > 1 and seen < 64:
                if p == me:
                    ours.add(pid)
                    break
                p = parents.get(p, 0)
                seen += 1
        return ours

    def _run(self):
        prev, _ = self._cpu_times()
        prev_t = time.monotonic()
        while not self.stop_event.wait(self.interval):
            cur, parents = self._cpu_times()
            now = time.monotonic()
            ours = self._ours(parents)
            foreign = mine = 0
            for key, ticks in cur.items():
                # A process started during the window: all its time is in it (roughly).
                delta = ticks - prev.get(key, 0)
                if key[0] in ours:
                    mine += delta
                else:
                    foreign += delta
            span = (now - prev_t) * self.tick
            self.samples.append((now, foreign / span, mine / span))
            prev, prev_t = cur, now

    def foreign_around(self, t, before=1.0, after=0.5):
        """The most cores foreign processes used in a window overlapping [t - before, t + after]."""
        vals = [
            f for end, f, _ in self.samples if end >= t - before and end - self.interval <= t + after
        ]
        return max(vals) if vals else float("nan")

    def mean_foreign(self, t0, t1):
        vals = [f for end, f, _ in self.samples if t0 <= end <= t1]
        return sum(vals) / len(vals) if vals else float("nan")
