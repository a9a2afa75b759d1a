"""Chaos stage: a kestrel server (SQLite), or a server --no-worker plus a worker (PostgreSQL),
SIGKILLed and restarted at random intervals while executions, secret writes, hostile templates
and health probes hit it; then every acknowledged piece of work is checked.

Usage: chaos.py --bin KESTREL --work DIR --mode sqlite|pg [--database URL] --duration S
                --recovery S --summary FILE [--stall-test] [--strict-health] [--seed N]
  --stall-test     first, with the server idle: does parsing a large or hostile flow stall the
                   other requests; does a render abandoned at its timeout go on using the CPU
  --strict-health  judge every health probe, also those made while other processes of the
                   machine took half a core or more (LONG_TESTS_STRICT_HEALTH=1 does the same)
Exit 0 when every check holds. Run by scripts/long-tests.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FINAL_STATES,
    Api,
    Checks,
    CpuSampler,
    Env,
    Node,
    Stopper,
    _die_with_parent,
    descendants,
    free_port,
    install_sigterm_handler,
    log,
    marked_processes,
    ms,
    pct,
    sha,
    still_alive,
    table,
    tree_files,
    write_summary,
)

NS = "chaos"
THREADS = 32  # slots: the load below needs about 20 on average
HEARTBEAT = "1s"
RESUME_AFTER = "6s"

# Normal flows, with the share of submissions each gets.
def normal_flows(sleep_short, sleep_long, marker):
    return {
        "fast": (
            0.45,
            f"""id: fast
namespace: {NS}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "fast {{{{ execution.id }}}}"
""",
        ),
        "secret": (
            0.25,
            f"""id: secret
namespace: {NS}
tasks:
  - id: read
    type: io.kestra.plugin.core.log.Log
    message: "the secret is {{{{ secret('K') }}}}"
""",
        ),
        "shell": (
            0.15,
            f"""id: shell
namespace: {NS}
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      LT_MARKER: "{marker}"
    commands:
      - echo start
      - sleep {sleep_short}
      - echo done
""",
        ),
        "pause": (
            0.10,
            f"""id: pause
namespace: {NS}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT2S
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed
""",
        ),
        "longshell": (
            0.04,
            f"""id: longshell
namespace: {NS}
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      LT_MARKER: "{marker}"
    commands:
      - sleep {sleep_long} &
      - wait
      - echo done
""",
        ),
    }


def log_flow(flow_id, message, extra=""):
    return f"""id: {flow_id}
namespace: {NS}
{extra}tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: {json.dumps(message)}
"""


def hostile_flows():
    """Flows whose templates try to exhaust the server: each must be refused (4xx at creation
    or trigger) or run and fail cleanly, never hang."""
    grow = "'aaaaaaaaaaaaaaaa'" + " | replace('a', 'aaaaaaaaaaaaaaaa')" * 7
    laughs_vars = "variables:\n"
    for i in range(10):
        nxt = f"l{i + 1}"
        body = " ~ ".join([f"render(vars.{nxt})"] * 10) if i < 9 else "'lol'"
        laughs_vars += f"  l{i}: {json.dumps('{{ ' + body + ' }}')}\n"
    alias_bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for c in "bcdefgh":
        prev = chr(ord(c) - 1)
        alias_bomb += f"{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    return {
        "h_fuel": log_flow(
            "h_fuel",
            "{% for i in range(0, 99999) %}{% for j in range(0, 99999) %}{% endfor %}{% endfor %}x",
        ),
        "h_range": log_flow("h_range", "{{ range(0, 100000000) | length }}"),
        "h_string": log_flow("h_string", "{{ " + grow + " }}"),
        "h_join": log_flow("h_join", "{{ range(1, 100000) | join('" + "x" * 400 + "') | length }}"),
        "h_nest_paren": log_flow("h_nest_paren", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"),
        "h_nest_for": log_flow(
            "h_nest_for", "{% for a in [1] %}" * 300 + "x" + "{% endfor %}" * 300
        ),
        "h_nest_list": log_flow("h_nest_list", "{{ " + "[" * 3000 + "1" + "]" * 3000 + " }}"),
        "h_render_rec": log_flow(
            "h_render_rec",
            "{{ render(vars.a) }}",
            extra='variables:\n  a: "{{ render(vars.a) }}"\n',
        ),
        "h_laughs": log_flow("h_laughs", "{{ render(vars.l0) | length }}", extra=laughs_vars),
        "h_macro": log_flow(
            "h_macro", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"
        ),
        "h_yaml_bomb": f"id: h_yaml_bomb\nnamespace: {NS}\n{alias_bomb}tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: '{{{{ 1 }}}}'\n",
    }


class Record:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # execution id -> flow id
        self.submit_status = Counter()  # (flow kind, status or error class)
        self.server_errors = Counter()  # 5xx messages
        self.secret_attempts = defaultdict(list)  # key -> [(seq, hash, acked)]
        self.secret_status = Counter()
        self.secret_latency = []  # (monotonic start, seconds, status) of every answered PUT
        self.trigger_latency = []  # (monotonic start, seconds, status) of every answered trigger
        self.hostile_create = {}  # flow -> (status, message)
        self.hostile_status = Counter()
        self.validate_latency = []  # seconds, answered
        self.validate_status = Counter()
        self.validate_events = []  # (monotonic start, end, flow)


def submitter(api_port, token, stop, rec, flows, weights, seed):
    rnd = random.Random(seed)
    api = Api(api_port, token)
    names = list(flows)
    while not stop.stopped():
        flow = rnd.choices(names, weights)[0]
        try:
            t0 = time.monotonic()
            status, doc, raw = api.trigger(NS, flow)
            with rec.lock:
                rec.trigger_latency.append((t0, time.monotonic() - t0, status))
                rec.submit_status[(flow, status)] += 1
                if 200 <= status < 300 and doc and doc.get("id"):
                    rec.acked[doc["id"]] = flow
                elif status >= 500:
                    rec.server_errors[raw[:200].decode(errors="replace")] += 1
        except OSError as e:
            with rec.lock:
                rec.submit_status[(flow, type(e).__name__)] += 1
            stop.sleep(0.1)
        except Exception as e:  # http.client errors (BadStatusLine, ...)
            with rec.lock:
                rec.submit_status[(flow, type(e).__name__)] += 1
            api.close()
            stop.sleep(0.1)
        stop.sleep(rnd.uniform(0.05, 0.25))
    api.close()


def secret_writer(api_port, token, stop, rec, keys, seed):
    """One writer for every key, sequential: the last write of a key is well defined."""
    rnd = random.Random(seed)
    api = Api(api_port, token)
    seq = 0
    while not stop.stopped():
        key = rnd.choice(keys)
        value = "v-" + os.urandom(20).hex()
        seq += 1
        entry = [seq, sha(value), False]
        with rec.lock:
            rec.secret_attempts[key].append(entry)
        try:
            t0 = time.monotonic()
            status, doc, raw = api.put_secret(NS, key, value)
            with rec.lock:
                rec.secret_latency.append((t0, time.monotonic() - t0, status))
                rec.secret_status[status] += 1
                if 200 <= status < 300:
                    entry[2] = True
                elif status >= 500:
                    rec.server_errors[raw[:200].decode(errors="replace")] += 1
        except Exception as e:
            with rec.lock:
                rec.secret_status[type(e).__name__] += 1
            api.close()
            stop.sleep(0.1)
        stop.sleep(rnd.uniform(0.05, 0.2))
    api.close()


def hostile_driver(api_port, token, stop, rec, accepted, refused_yaml, seed):
    """Every 1-3 s, the next hostile template in a shuffled round: an accepted flow is
    triggered, a refused one is sent to /flows/validate again."""
    rnd = random.Random(seed)
    api = Api(api_port, token, timeout=30)
    round_ = [("trigger", f, None) for f in accepted] + [("validate", n, t) for n, t in refused_yaml]
    queue = []
    while not stop.stopped():
        stop.sleep(rnd.uniform(1.0, 3.0))
        if stop.stopped() or not round_:
            break
        if not queue:
            queue = round_[:]
            rnd.shuffle(queue)
        what, name, text = queue.pop()
        try:
            if what == "trigger":
                status, doc, raw = api.trigger(NS, name)
                with rec.lock:
                    rec.hostile_status[(name, status)] += 1
                    if 200 <= status < 300 and doc and doc.get("id"):
                        rec.acked[doc["id"]] = name
                    elif status >= 500:
                        rec.server_errors[raw[:200].decode(errors="replace")] += 1
            else:
                t0 = time.monotonic()
                status, _, raw = api.json(
                    "POST", "/api/v1/main/flows/validate", text, "application/x-yaml"
                )
                with rec.lock:
                    rec.validate_latency.append(time.monotonic() - t0)
                    rec.validate_events.append((t0, time.monotonic(), name))
                    rec.validate_status[(name, status)] += 1
                    if status >= 500:
                        rec.server_errors[raw[:200].decode(errors="replace")] += 1
        except Exception as e:
            with rec.lock:
                rec.hostile_status[(name, type(e).__name__)] += 1
            api.close()


def stall_test(port, token, work, bomb_yaml, rounds_bomb=8, rounds_big=3, big_tasks=20000):
    """Does one request that parses a large or hostile flow stop the server from answering
    others? With the server otherwise idle, /health and a 404 are probed every 20 ms (two
    processes) while, one after the other, the YAML alias bomb is sent to /flows/validate and a
    flow of `big_tasks` Log tasks (under the 2 MiB body limit) is validated and created. A
    request *stalls* the server when, for more than 100 ms of its duration, no probe got its
    answer. Control: the same measure over idle seconds before; when the idle machine already
    shows such gaps (CPU taken by others), the result is not judged."""
    stop_file = os.path.join(work, "stall.stop")
    outs = [os.path.join(work, f"stall-{i}.txt") for i in range(2)]
    probers = [
        subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py"),
             str(port), out, "0.02", stop_file, path],
            preexec_fn=_die_with_parent,
        )
        for out, path in zip(outs, ("/health", "/lt-runtime-probe"))
    ]
    big = "id: big_{n}\nnamespace: " + NS + "\ntasks:\n" + "".join(
        f'  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "task {i}"\n' for i in range(big_tasks)
    )
    api = Api(port, token, timeout=120)
    events = []  # (what, start, end, status)
    try:
        time.sleep(0.5)
        control = (time.monotonic(), None)
        time.sleep(3)
        control = (control[0], time.monotonic())
        plan = [("validate alias bomb", "validate", bomb_yaml)] * rounds_bomb
        plan += [(f"validate {big_tasks:,}-task flow", "validate", big.format(n=0))] * rounds_big
        plan += [(f"create {big_tasks:,}-task flow", "create", big.format(n=i)) for i in range(1, rounds_big + 1)]
        for what, route, body in plan:
            t0 = time.monotonic()
            try:
                if route == "validate":
                    status, _, _ = api.json("POST", "/api/v1/main/flows/validate", body, "application/x-yaml")
                else:
                    status, _, _ = api.create_flow(body)
            except Exception as e:
                status = type(e).__name__
                api.close()
            events.append((what, t0, time.monotonic(), status))
            time.sleep(0.4)
        for i in range(1, rounds_big + 1):
            try:
                api.json("DELETE", f"/api/v1/main/flows/{NS}/big_{i}")
            except Exception:
                api.close()
    finally:
        open(stop_file, "w").close()
        for p in probers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        api.close()
    answers = sorted(b for out in outs for a, b, st in read_probes(out) if st)

    def longest_gap(t0, t1):
        inside = [t for t in answers if t0 < t < t1]
        edges = [t0] + inside + [t1]
        return max(b - a for a, b in zip(edges, edges[1:])), len(inside)

    control_gap, _ = longest_gap(*control)
    rows = []
    stalled = 0
    for what, t0, t1, status in events:
        gap, n = longest_gap(t0, t1)
        if gap > 0.1:
            stalled += 1
        rows.append((what, status, f"{(t1 - t0) * 1000:.0f} ms", f"{gap * 1000:.0f} ms", n, "**yes**" if gap > 0.1 else "no"))
    return rows, stalled, control_gap


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def render_burn_test(port, token, pid, flow="h_laughs", watch=10.0):
    """One execution of a hostile flow that hits `expression.render-timeout` (10 s) with the
    server otherwise idle: once it ended, does its render still burn CPU? (docs/expressions.md:
    the abandoned render's thread ends when its fuel runs out.) Returns (state, seconds to its
    end, cores the server used over `watch` seconds after the end, over 5 idle s before)."""
    api = Api(port, token, timeout=30)
    try:
        c0 = process_cpu_seconds(pid)
        time.sleep(5)
        idle = (process_cpu_seconds(pid) - c0) / 5
        t0 = time.monotonic()
        status, doc, raw = api.trigger(NS, flow)
        if status != 200:
            return (f"trigger {status}", 0, float("nan"), idle)
        eid = doc["id"]
        state = None
        while time.monotonic() - t0 < 60:
            _, d, _ = api.execution(eid)
            state = ((d or {}).get("state") or {}).get("current")
            if state in FINAL_STATES:
                break
            time.sleep(0.2)
        ended = time.monotonic() - t0
        c1 = process_cpu_seconds(pid)
        time.sleep(watch)
        return (state, ended, (process_cpu_seconds(pid) - c1) / watch, idle)
    finally:
        api.close()


class Incarnation:
    def __init__(self, node, pid, started):
        self.node = node
        self.pid = pid
        self.started = started
        self.first_ok = None
        self.killed = None


def iso_to_mono(text, offset):
    """An API date (ISO-8601, UTC) as this machine's monotonic clock."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() - offset


def latency_line(samples, t0):
    """p50/p99/max of answered requests, and when the slowest ones started."""
    lat = [d for _, d, _ in samples]
    if not lat:
        return "no answer"
    slowest = sorted(samples, key=lambda x: -x[1])[:3]
    return (
        f"latency p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, max {ms(max(lat))} "
        f"(slowest at t = " + ", ".join(f"{a - t0:.1f} s: {d * 1000:.0f} ms" for a, d, _ in slowest) + ")"
    )


def read_probes(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                a, b, st = line.split()
                out.append((float(a), float(b), int(st)))
    except OSError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mode", choices=["sqlite", "pg"], required=True)
    ap.add_argument("--database")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--recovery", type=float, default=240)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--strict-health",
        action="store_true",
        default=bool(os.environ.get("LONG_TESTS_STRICT_HEALTH")),
        help="judge every health probe, also those made while other processes of the machine took the CPU",
    )
    ap.add_argument("--stall-test", action="store_true", help="first, with the server idle: the stall test and the render burn test")
    args = ap.parse_args()
    install_sigterm_handler()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    checks = Checks()
    title = (
        "Chaos, embedded (SQLite): one server"
        if args.mode == "sqlite"
        else "Chaos, PostgreSQL: a server --no-worker and a worker"
    )
    nodes = []
    probers = []
    stop_file = os.path.join(args.work, "probe.stop")
    kill_log = []
    incarnations = []
    orphan_reports = []
    orphan_threads = []
    cpu = None
    lines = [f"## {title}", ""]
    mono_offset = time.time() - time.monotonic()
    tmp_before = set(os.listdir("/tmp"))
    try:
        port = free_port()
        config = (
            f"worker:\n  threads: {THREADS}\n  heartbeat: {HEARTBEAT}\n  resume-after: {RESUME_AFTER}\n"
        )
        if args.mode == "pg":
            config = f"database: {args.database}\n" + config
        env = Env(args.bin, args.work, config)
        token = env.token()
        marker = "lt-" + os.urandom(6).hex()
        sleep_short = f"2.{rnd.randrange(10**6, 10**7)}"
        sleep_long = f"8.{rnd.randrange(10**6, 10**7)}"
        flows = normal_flows(sleep_short, sleep_long, marker)
        server = Node(
            env,
            "server",
            ["server", "--bind", f"127.0.0.1:{port}"] + (["--no-worker"] if args.mode == "pg" else []),
            port,
        )
        nodes.append(server)
        worker = None
        if args.mode == "pg":
            worker = Node(env, "worker", ["worker"])
            nodes.append(worker)

        def start(node):
            pid = node.start()
            inc = Incarnation(node, pid, node.started_at)
            incarnations.append(inc)
            if node is server:
                inc.first_ok = node.wait_ready(60)
                if inc.first_ok is None:
                    raise RuntimeError(
                        f"the server did not answer /health within 60 s:\n{node.log_tail()}"
                    )
            return inc

        current = {server.name: start(server)}
        if worker:
            current[worker.name] = start(worker)

        # Setup: flows, the secrets (K is what the secret flow reads), hostile flows.
        api = Api(port, token, timeout=60)
        for name, (_, text) in flows.items():
            status, doc, raw = api.create_flow(text)
            if status != 200:
                raise RuntimeError(f"creating flow {name}: {status} {raw[:500]!r}")
        keys = ["K", "S1", "S2", "S3", "S4"]
        rec = Record()
        for key in keys:
            value = "v-" + os.urandom(20).hex()
            status, _, raw = api.put_secret(NS, key, value)
            if status != 200:
                raise RuntimeError(f"setting secret {key}: {status} {raw[:300]!r}")
            rec.secret_attempts[key].append([0, sha(value), True])
        hostile = hostile_flows()
        accepted = []
        for name, text in hostile.items():
            t0 = time.monotonic()
            try:
                status, doc, raw = api.create_flow(text)
                message = "" if status == 200 else (doc or {}).get("message", raw[:160].decode(errors="replace"))
            except Exception as e:
                status, message = type(e).__name__, str(e)
                api.close()
            rec.hostile_create[name] = (status, message, time.monotonic() - t0)
            if status == 200:
                accepted.append(name)
        refused_yaml = [(n, hostile[n]) for n in hostile if rec.hostile_create[n][0] != 200]
        api.close()
        log(f"setup done: port {port}; hostile flows accepted {accepted}, refused {[n for n, _ in refused_yaml]}")
        stall = None
        if args.stall_test:
            log("stall test: large and hostile flows parsed while the server is probed every 20 ms")
            stall = stall_test(port, token, args.work, hostile["h_yaml_bomb"])
        burn = None
        if args.stall_test and "h_laughs" in accepted:
            log("render burn test: one h_laughs execution, then the server's CPU once it ended")
            burn = render_burn_test(port, token, server.pid)
            log(f"render burn test: {burn}")

        # Load.
        cpu = CpuSampler().start()
        probe_out = os.path.join(args.work, "probes.txt")
        runtime_out = os.path.join(args.work, "probes-runtime.txt")
        for out, path in ((probe_out, "/health"), (runtime_out, "/lt-runtime-probe")):
            probers.append(
                subprocess.Popen(
                    [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py"),
                     str(port), out, "0.1", stop_file, path],
                    preexec_fn=_die_with_parent,
                )
            )
        stop = Stopper()
        names = list(flows)
        weights = [flows[n][0] for n in names]
        threads = [
            threading.Thread(target=submitter, args=(port, token, stop, rec, names, weights, seed + i), daemon=True)
            for i in range(3)
        ]
        threads.append(threading.Thread(target=secret_writer, args=(port, token, stop, rec, keys, seed + 10), daemon=True))
        threads.append(
            threading.Thread(target=hostile_driver, args=(port, token, stop, rec, accepted, refused_yaml, seed + 20), daemon=True)
        )
        for t in threads:
            t.start()
        chaos_start = time.monotonic()
        chaos_end = chaos_start + args.duration
        restart_times = []

        def kill_and_restart(node):
            inc = current[node.name]
            snapshot = descendants(node.pid)
            inc.killed = node.kill()
            kill_log.append((node.name, round(inc.killed - chaos_start, 1), len(snapshot)))

            def check_orphans(snap=snapshot, name=node.name, when=inc.killed):
                deadline = time.monotonic() + 2.0
                left = still_alive(snap)
                while left and time.monotonic() < deadline:
                    time.sleep(0.1)
                    left = still_alive(snap)
                if left:
                    details = []
                    for p, _ in left:
                        try:
                            with open(f"/proc/{p}/cmdline", "rb") as f:
                                details.append(f"{p}: " + f.read().replace(b"\0", b" ").decode(errors="replace")[:80])
                        except OSError:
                            details.append(str(p))
                    orphan_reports.append((name, round(when - chaos_start, 1), details))

            t = threading.Thread(target=check_orphans, daemon=True)
            t.start()
            orphan_threads.append(t)
            t0 = time.monotonic()
            current[node.name] = start(node)
            if node is server:
                restart_times.append(time.monotonic() - t0)

        while time.monotonic() < chaos_end:
            time.sleep(max(0.0, min(rnd.uniform(3, 10), chaos_end - time.monotonic())))
            if time.monotonic() >= chaos_end:
                break
            for n in nodes:  # a node that died by itself is a finding
                if not n.alive():
                    raise RuntimeError(f"{n.name} exited by itself ({n.proc.returncode}):\n{n.log_tail()}")
            victim = rnd.choice(nodes)
            log(f"SIGKILL {victim.name} pid {victim.pid}")
            kill_and_restart(victim)
        # The last restart: every node killed and started once more, then the load stops.
        stop.stop()
        for t in threads:
            t.join(30)
        for n in nodes:
            log(f"final SIGKILL {n.name} pid {n.pid}")
            kill_and_restart(n)
        load_end = time.monotonic()
        log(f"chaos over after {load_end - chaos_start:.1f} s; {len(rec.acked)} executions acknowledged; recovering")

        # Recovery: every acknowledged execution reaches a final state, within the deadline.
        api = Api(port, token, timeout=30)
        pending = dict(rec.acked)
        final = {}
        deadline = time.monotonic() + args.recovery
        while pending and time.monotonic() < deadline:
            for eid in list(pending):
                try:
                    status, doc, _ = api.execution(eid)
                except Exception:
                    api.close()
                    continue
                if status == 200 and doc:
                    state = (doc.get("state") or {}).get("current")
                    if state in FINAL_STATES:
                        final[eid] = (pending.pop(eid), state, doc)
            if pending:
                time.sleep(1)
        recovered_in = time.monotonic() - load_end
        ends = [iso_to_mono((doc.get("state") or {}).get("endDate"), mono_offset) for _, _, doc in final.values()]
        ends = [e for e in ends if e]
        last_end = (max(ends) - load_end) if ends else float("nan")
        # Time in the queue: from CREATED to the first RUNNING.
        waits = []
        for _, _, doc in final.values():
            hist = (doc.get("state") or {}).get("histories") or []
            created = next((h["date"] for h in hist if h.get("state") == "CREATED"), None)
            running = next((h["date"] for h in hist if h.get("state") == "RUNNING"), None)
            if created and running:
                waits.append(iso_to_mono(running, 0) - iso_to_mono(created, 0))
        log(f"recovery: {len(final)} ended, {len(pending)} not ended after {recovered_in:.1f} s")
        last_states = {}
        for eid in pending:
            try:
                status, doc, _ = api.execution(eid)
                last_states[eid] = (status, ((doc or {}).get("state") or {}).get("current"))
            except Exception as e:
                last_states[eid] = (type(e).__name__, None)
        unexpected = []  # normal flows not SUCCESS, with their first WARN/ERROR lines
        for eid, (flow, state, doc) in final.items():
            if flow in flows and state != "SUCCESS":
                try:
                    _, logs, _ = api.json("GET", f"/api/v1/main/logs/{eid}?minLevel=WARN")
                    msg = "; ".join(e.get("message", "")[:160] for e in (logs or [])[:3])
                except Exception:
                    msg = "?"
                unexpected.append((eid, flow, state, msg))
        api.close()

        # Graceful stop, then what is left behind.
        stop_codes = {}
        for n in reversed(nodes):
            stop_codes[n.name] = n.stop(30)
        stopped_at = time.monotonic()
        open(stop_file, "w").close()
        for p in probers:
            p.wait(10)
        cpu.stop()
        for t in orphan_threads:
            t.join(5)
        leftovers = marked_processes(marker) + marked_processes(sleep_short) + marked_processes(sleep_long)
        work_entries = tree_files(os.path.join(env.data, "work"))
        task_dirs = [e for e in work_entries if "/" in e and not e.endswith("/.lock")]
        process_folders = [e for e in work_entries if "/" not in e]
        tmp_new = sorted(set(os.listdir("/tmp")) - tmp_before)

        # Secrets: the value each key holds now, read with the CLI (the API never returns values).
        secret_rows, secret_bad, secret_late = [], [], 0
        for key in keys:
            r = env.cli("secrets", "get", NS, key, check=False)
            got = sha(r.stdout.decode()) if r.returncode == 0 else None
            attempts = rec.secret_attempts[key]
            acked = [a for a in attempts if a[2]]
            last_acked = acked[-1]
            later = [a for a in attempts if a[0] > last_acked[0]]
            if got == last_acked[1]:
                verdict = "the last acknowledged"
            elif got is not None and any(got == a[1] for a in later):
                verdict = "a later write, unacknowledged (in flight at a kill)"
                secret_late += 1
            else:
                verdict = "**neither the last acknowledged nor a later write**" if got else f"**unreadable** (exit {r.returncode})"
                secret_bad.append(key)
            secret_rows.append((key, len(attempts) - 1, len(acked) - 1, f"#{last_acked[0]}", verdict))

        # Hostile executions: when each ran (for the health analysis) and how long.
        hostile_runs = []  # (start, end, flow)
        hostile_durations = defaultdict(list)
        for eid, (flow, state, doc) in final.items():
            if flow in flows:
                continue
            st = doc.get("state") or {}
            a = iso_to_mono(st.get("startDate"), mono_offset)
            b = iso_to_mono(st.get("endDate"), mono_offset)
            if a and b:
                hostile_runs.append((a, b, flow))
                hostile_durations[flow].append(b - a)

        # Health probes: those made while the server was up (after its first answer, before
        # its kill or stop) must answer 200 within 100 ms. One made while processes outside
        # this test took half a core or more is not judged (unless --strict-health): kestrel
        # runs at nice 10 and gets little CPU then.
        probes = read_probes(probe_out)
        runtime = read_probes(runtime_out)
        server_incs = [i for i in incarnations if i.node is server]
        up_lat, bad = [], []
        for start_t, end_t, status in probes:
            for inc in server_incs:
                end_of_life = inc.killed if inc.killed is not None else stopped_at
                if inc.first_ok is not None and start_t >= inc.first_ok and end_t < end_of_life:
                    lat = end_t - start_t
                    up_lat.append(lat)
                    if status != 200 or lat > 0.1:
                        bad.append((start_t, lat, status))
                    break
        bad_rows, judged_bad = [], []
        for start_t, lat, status in bad:
            foreign = cpu.foreign_around(start_t)
            contended = foreign >= 0.5
            near = [b - a for a, b, _ in runtime if abs(a - start_t) <= 0.15]
            during = sorted({f for a, b, f in hostile_runs if a - 0.2 <= start_t <= b + 0.2}
                            | {f"validate {n}" for a, b, n in rec.validate_events if a - 0.2 <= start_t <= b + 0.2})
            phase = "chaos" if start_t < load_end else "recovery"
            if args.strict_health or not contended:
                judged_bad.append(start_t)
            bad_rows.append((
                f"{start_t - chaos_start:.1f}", phase,
                f"{lat * 1000:.0f} ms" + ("" if status == 200 else f" (status {status or 'none'})"),
                f"{max(near) * 1000:.0f} ms" if near else "-",
                f"{foreign:.2f}",
                ", ".join(during) or "-",
                "yes" if (args.strict_health or not contended) else "no (contended)",
            ))
        foreign_mean = cpu.mean_foreign(chaos_start, stopped_at)

        # Report.
        by_flow = Counter(rec.acked.values())
        by_state = Counter(state for _, state, _ in final.values())
        by_flow_state = defaultdict(Counter)
        for flow, state, _ in final.values():
            by_flow_state[flow][state] += 1
        subs = Counter()
        for (flow, status), n in rec.submit_status.items():
            subs[status] += n
        kills = Counter(name for name, _, _ in kill_log)
        rt = restart_times

        lines += [
            f"Server on 127.0.0.1:{port}, fresh data directory and master key, API token auth; "
            f"`worker.threads: {THREADS}`, `worker.heartbeat: {HEARTBEAT}`, `worker.resume-after: {RESUME_AFTER}` "
            f"(so that the work of a killed node is taken over within the test); seed {seed}.",
            f"For {args.duration:.0f} s: 3 submitters of 5 flows (Log; Log of `secret('K')`; shell "
            f"`sleep {sleep_short}`; Pause PT2S + Sleep PT1S; shell `sleep {sleep_long} &`), one secret writer "
            f"(5 keys, PUT), one hostile-template driver, /health probed every 100 ms (separate process, "
            f"a new connection each), SIGKILL of a node every 3–10 s (random) and its restart on the same data and port.",
            "",
            f"- kills: " + ", ".join(f"{n} {c}" for n, c in kills.items())
            + f" (the last round, after the load stopped, kills every node once more); server restart to its first /health 200: "
            + (f"p50 {ms(pct(rt, 50))}, max {ms(max(rt))}" if rt else "n/a")
            + "; at t = " + ", ".join(f"{t:.1f} s ({n})" for n, t, _ in kill_log),
            f"- executions acknowledged (2xx with an id): {len(rec.acked)} "
            + "(" + ", ".join(f"{f} {c}" for f, c in sorted(by_flow.items())) + ")",
            f"- trigger answers: " + ", ".join(f"{k} {v}" for k, v in sorted(subs.items(), key=str))
            + " (connection errors: requests cut by a kill)",
            f"- ended by state: " + ", ".join(f"{k} {v}" for k, v in sorted(by_state.items()))
            + f"; not ended after the recovery deadline ({args.recovery:.0f} s): {len(pending)}; "
            f"the last one ended (its endDate) {last_end:.1f} s after the load stopped; polling them all took {recovered_in:.1f} s",
            f"- time from CREATED to the first RUNNING (the queue, and the takeover of a killed node's work): "
            f"p50 {ms(pct(waits, 50))}, p99 {ms(pct(waits, 99))}, max {ms(max(waits) if waits else float('nan'))}",
            f"- secret writes: {sum(len(v) - 1 for v in rec.secret_attempts.values())} sent, "
            f"{sum(1 for v in rec.secret_attempts.values() for a in v[1:] if a[2])} acknowledged; answers "
            + ", ".join(f"{k} {v}" for k, v in sorted(rec.secret_status.items(), key=str))
            + "; " + latency_line(rec.secret_latency, chaos_start),
            f"- trigger answers' latency: " + latency_line(rec.trigger_latency, chaos_start),
            f"- health probes: {len(probes)} in all, {len(up_lat)} while the server was up; "
            f"latency p50 {ms(pct(up_lat, 50))}, p99 {ms(pct(up_lat, 99))}, max {ms(max(up_lat) if up_lat else float('nan'))}; "
            f"unanswered or over 100 ms: {len(bad)} ({len(judged_bad)} judged)",
            f"- other processes of the machine (not this test) used {foreign_mean:.2f} of the {os.cpu_count()} cores on average during the stage",
            f"- new entries in /tmp after the stage (other users of the machine may have made them; "
            f"kestrel keeps task working directories in `work/` of its data directory): {tmp_new[:10] or 'none'}",
            f"- 5xx answers: {sum(rec.server_errors.values())}"
            + (" (" + "; ".join(f"{n}× {m}" for m, n in rec.server_errors.most_common(3)) + ")" if rec.server_errors else ""),
            "",
        ]
        if bad_rows:
            lines += [
                "Health probes unanswered or over 100 ms while the server was up (t from the start of the load; "
                "`/lt-runtime-probe` is a 404 probed alongside, through the router only, no database; "
                "foreign cores: CPU taken by processes outside this test around then; a probe is not judged when they took ≥ 0.5 core):",
                "",
                table(["t (s)", "phase", "/health", "runtime probe", "foreign cores", "hostile work in progress", "judged"], bad_rows[:20]),
                "",
            ]
        lines += [
            "Hostile templates (created once before the load; during it the accepted ones are triggered and the refused ones sent to `/flows/validate` again, in turn):",
            "",
        ]
        hostile_rows = []
        for name, (status, message, took) in rec.hostile_create.items():
            states = by_flow_state.get(name, Counter())
            d = hostile_durations.get(name)
            hostile_rows.append((
                name,
                f"{status} in {took * 1000:.0f} ms" + (f": {message[:110]}" if message else ""),
                sum(n for (f, st), n in rec.hostile_status.items() if f == name and isinstance(st, int) and 200 <= st < 300)
                if status == 200 else f"validate: {sum(n for (f, _), n in rec.validate_status.items() if f == name)}",
                (", ".join(f"{st} {c}" for st, c in sorted(states.items())) or "-")
                + (f"; execution lasted {min(d):.1f}–{max(d):.1f} s" if d else ""),
            ))
        lines.append(table(["flow", "creation", "executions acknowledged", "ended"], hostile_rows))
        if rec.validate_latency:
            lines += [
                "",
                f"`/flows/validate` of the refused ones: {len(rec.validate_latency)} answered, "
                f"p50 {ms(pct(rec.validate_latency, 50))}, max {ms(max(rec.validate_latency))}; statuses "
                + ", ".join(f"{st} {c}" for st, c in sorted(Counter(st for (_, st), c in rec.validate_status.items() for _ in range(c)).items(), key=str)),
            ]
        if stall:
            rows, stalled, control_gap = stall
            lines += [
                "",
                "Stall test, before the load (the server otherwise idle; /health and a 404 probed every 20 ms by two processes; "
                "*longest gap*: the longest time during the request in which no probe got its answer; it stalls the server past 100 ms). "
                f"Control, 3 idle seconds: longest gap {control_gap * 1000:.0f} ms.",
                "",
                table(["request", "status", "took", "longest gap", "probes answered meanwhile", "stalled"], rows),
            ]
        if burn:
            state, ended, cores, idle = burn
            lines += [
                "",
                f"Render burn test, before the load: one `h_laughs` execution (10 levels of 10 nested `render()`) on the idle server "
                f"ended {state} after {ended:.1f} s (`expression.render-timeout` 10 s); over the {10} s after its end the server used "
                f"{cores:.2f} core (idle before: {idle:.2f}). Its abandoned render keeps running until its fuel runs out "
                f"(docs/expressions.md), and goes on during the load.",
            ]
        lines += ["", "Secrets (values never printed: compared by SHA-256; read back with `kestrel secrets get` after the stop, as no API route returns a value):", ""]
        lines.append(table(["key", "writes", "acknowledged", "last acknowledged", "value read back is"], secret_rows))
        lines.append("")

        checks.add(
            "every acknowledged execution exists and ended",
            not pending,
            f"{len(final)}/{len(rec.acked)} ended"
            + ("; not ended: " + ", ".join(f"{e} ({rec.acked[e]}: {last_states.get(e)})" for e in list(pending)[:8]) if pending else ""),
        )
        checks.add(
            "normal flows ended SUCCESS (a resumed execution runs again)",
            not unexpected,
            "; ".join(f"{e} {f} {st}: {m}" for e, f, st, m in unexpected[:6])
            or f"{sum(1 for f, _, _ in final.values() if f in flows)} SUCCESS",
        )
        hostile_states = Counter(st for flow, st, _ in final.values() if flow not in flows)
        checks.add(
            "hostile templates refused (4xx) or ended FAILED, none hanging",
            all(f in flows for f in pending.values())
            and all(st == 200 or (isinstance(st, int) and 400 <= st < 500) for st, _, _ in rec.hostile_create.values())
            and set(hostile_states) <= {"FAILED"},
            "executions: " + (", ".join(f"{st} {c}" for st, c in hostile_states.items()) or "none"),
        )
        if stall:
            rows, stalled, control_gap = stall
            judged = control_gap <= 0.1
            checks.add(
                "parsing a large or hostile flow does not stop the server answering other requests for over 100 ms",
                stalled == 0 or not judged,
                f"{stalled} of {len(rows)} requests stalled the server"
                + ("" if judged else f"; not judged: the idle control already had a {control_gap * 1000:.0f} ms gap"),
            )
        if burn:
            state, ended, cores, idle = burn
            checks.add(
                "a render abandoned at expression.render-timeout stops using the CPU soon after its execution failed",
                state == "FAILED" and cores - idle < 0.2,
                f"{state} after {ended:.1f} s, then {cores:.2f} core used over 10 s (idle {idle:.2f})",
            )
        checks.add(
            "every acknowledged secret write readable at its latest version",
            not secret_bad,
            (f"wrong: {secret_bad}" if secret_bad else f"{len(keys)} keys hold their last acknowledged value")
            + (f" ({secret_late} of them a later write that was in flight at a kill)" if secret_late else ""),
        )
        checks.add(
            "no task process outlives a killed node (its descendants gone within 2 s of SIGKILL)",
            not orphan_reports,
            "; ".join(f"{n} killed at {t}s: {d[:3]}" for n, t, d in orphan_reports[:4])
            or f"{sum(k[2] for k in kill_log)} descendant processes checked over {len(kill_log)} kills",
        )
        checks.add(
            "no marked task process left at the end",
            not leftovers,
            "; ".join(f"{p}: {c[:80]}" for p, c in leftovers[:5]) or f"none (marker {marker}, `sleep {sleep_short}`, `sleep {sleep_long}`)",
        )
        checks.add(
            "no task working directory left under data/work",
            not task_dirs,
            (f"left: {task_dirs[:6]}" if task_dirs else "none")
            + (f"; per-process folders left: {process_folders}" if process_folders else "; the work root is empty"),
        )
        checks.add(
            "every health probe while the server was up answered 200 within 100 ms"
            + ("" if args.strict_health else " (judged when the machine was not busy with other processes)"),
            bool(up_lat) and not judged_bad,
            f"{len(up_lat)} probes; {len(bad)} unanswered or slow, {len(judged_bad)} of them judged",
        )
        checks.add(
            "the nodes stopped gracefully on SIGTERM",
            all(c == 0 for c in stop_codes.values()),
            ", ".join(f"{n} exit {c}" for n, c in stop_codes.items()),
        )
        lines.append(checks.markdown())
    except BaseException as e:
        log(f"chaos stage error: {e!r}")
        checks.add("the stage ran to its end", False, f"{type(e).__name__}: {str(e)[:1500]}")
        lines.append(checks.markdown())
        for n in nodes:
            if n.logs:
                lines += ["", f"Last lines of {n.name}'s log ({n.logs[-1]}):", "", "```", n.log_tail(15), "```"]
    finally:
        open(stop_file, "w").close()
        for n in nodes:
            try:
                n.stop(10)
            except Exception:
                pass
        for p in probers:
            if p.poll() is None:
                p.kill()
        if cpu:
            cpu.stop()
        write_summary(args.summary, "\n".join(lines))
    sys.exit(0 if checks.ok else 1)


if __name__ == "__main__":
    main()
