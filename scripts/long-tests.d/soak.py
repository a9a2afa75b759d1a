"""Soak stage: one kestrel server (SQLite) under a steady light load for DURATION seconds
(RATE executions/s of a Log flow, 1/s of a flow reading a secret, 2/s listings of the
namespace's secrets), its RSS sampled every INTERVAL seconds. Memory is flat when the median
of the last 30% of the run (the last 3 minutes of 10) is within 10% or 20 MiB of the median of
30%-60% (minutes 3-6, after warm-up).

Usage: soak.py --bin KESTREL --work DIR --duration S [--rate R] [--interval S] --summary FILE
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FINAL_STATES,
    Api,
    Checks,
    Env,
    Node,
    Stopper,
    free_port,
    install_sigterm_handler,
    log,
    ms,
    pct,
    rss_kib,
    status_kib,
    table,
    tree_files,
    write_summary,
)

NS = "soak"
FAST = f"""id: fast
namespace: {NS}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "soak {{{{ execution.id }}}}"
"""
SECRET = f"""id: secret
namespace: {NS}
tasks:
  - id: read
    type: io.kestra.plugin.core.log.Log
    message: "the secret is {{{{ secret('S') }}}}"
"""


class Load:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.status = Counter()
        self.latency = []


def paced(port, token, stop, load, what, rate, offset):
    """`what` at `rate` per second on an absolute schedule (a late request is not made up by a
    burst: the schedule slips instead)."""
    api = Api(port, token)
    period = 1.0 / rate
    next_at = time.monotonic() + offset
    while not stop.stopped():
        delay = next_at - time.monotonic()
        if delay > 0 and stop.sleep(delay):
            break
        next_at = max(next_at + period, time.monotonic() - period)
        t0 = time.monotonic()
        try:
            if what == "list":
                status, doc, _ = api.json("GET", f"/api/v1/main/namespaces/{NS}/secrets")
            else:
                status, doc, _ = api.trigger(NS, what)
            took = time.monotonic() - t0
            with load.lock:
                load.status[(what, status)] += 1
                if what != "list":
                    load.latency.append(took)
                    if 200 <= status < 300 and doc and doc.get("id"):
                        load.acked[doc["id"]] = what
        except Exception as e:
            with load.lock:
                load.status[(what, type(e).__name__)] += 1
            api.close()
    api.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--summary", required=True)
    args = ap.parse_args()
    install_sigterm_handler()
    checks = Checks()
    lines = ["## Soak", ""]
    server = None
    try:
        port = free_port()
        env = Env(args.bin, args.work, "")
        token = env.token()
        server = Node(env, "server", ["server", "--bind", f"127.0.0.1:{port}"], port)
        server.start()
        if server.wait_ready(60) is None:
            raise RuntimeError(f"the server did not start:\n{server.log_tail()}")
        api = Api(port, token, timeout=60)
        for text in (FAST, SECRET):
            status, _, raw = api.create_flow(text)
            if status != 200:
                raise RuntimeError(f"creating a flow: {status} {raw[:300]!r}")
        status, _, raw = api.put_secret(NS, "S", "soak-" + os.urandom(16).hex())
        if status != 200:
            raise RuntimeError(f"setting the secret: {status} {raw[:300]!r}")
        api.close()

        load = Load()
        stop = Stopper()
        # RATE/s of the Log flow over 4 threads (a request may take longer than the period).
        threads = [
            threading.Thread(target=paced, args=(port, token, stop, load, "fast", args.rate / 4, i / args.rate), daemon=True)
            for i in range(4)
        ]
        threads.append(threading.Thread(target=paced, args=(port, token, stop, load, "secret", 1.0, 0.5), daemon=True))
        threads.append(threading.Thread(target=paced, args=(port, token, stop, load, "list", 2.0, 0.25), daemon=True))
        start = time.monotonic()
        for t in threads:
            t.start()
        samples = []  # (t seconds, RSS KiB, executions acknowledged so far, RssAnon, RssFile, DB bytes)
        db_files = [os.path.join(env.data, n) for n in ("kestrel.db", "kestrel.db-wal")]
        next_sample = start
        end = start + args.duration
        while True:
            now = time.monotonic()
            if now >= next_sample - 0.01:
                if not server.alive():
                    raise RuntimeError(f"the server died during the soak:\n{server.log_tail()}")
                with load.lock:
                    acked = len(load.acked)
                st = status_kib(server.pid)
                db = sum(os.path.getsize(f) for f in db_files if os.path.exists(f))
                samples.append((now - start, st.get("VmRSS"), acked, st.get("RssAnon"), st.get("RssFile"), db))
                log(f"soak t={now - start:5.0f}s RSS {st.get('VmRSS', 0) / 1024:.1f} MiB "
                    f"(anon {st.get('RssAnon', 0) / 1024:.1f}, file {st.get('RssFile', 0) / 1024:.1f}), "
                    f"db {db / 2**20:.1f} MiB, {acked} executions")
                next_sample += args.interval
            if now >= end:
                break
            time.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
        stop.stop()
        for t in threads:
            t.join(30)
        load_s = time.monotonic() - start
        rss_load_end = rss_kib(server.pid)

        # Every acknowledged execution ends (SUCCESS), within 5 minutes: counted by state with
        # the search route, then each acknowledged one not seen as SUCCESS looked up by id.
        api = Api(port, token, timeout=60)
        deadline = time.monotonic() + 300
        pending = dict(load.acked)
        states = Counter()
        while pending and time.monotonic() < deadline:
            page = 1
            while pending:
                status, doc, _ = api.json(
                    "GET", f"/api/v1/main/executions/search?namespace={NS}&state=SUCCESS&size=1000&page={page}"
                )
                results = (doc or {}).get("results") or []
                for e in results:
                    if pending.pop(e.get("id"), None) is not None:
                        states["SUCCESS"] += 1
                if len(results) < 1000:
                    break
                page += 1
            for eid in list(pending)[:200]:
                status, doc, _ = api.execution(eid)
                state = ((doc or {}).get("state") or {}).get("current")
                if state in FINAL_STATES:
                    states[state] += 1
                    pending.pop(eid)
            if pending:
                time.sleep(2)
        drained_s = time.monotonic() - start - load_s
        api.close()
        rss_end = rss_kib(server.pid)
        code = server.stop(30)
        work_left = tree_files(os.path.join(env.data, "work"))

        # Memory: median of 30-60% of the run against the median of the last 30%, for the
        # RSS and for its anonymous part (the heap: RSS also counts the database file's pages
        # that SQLite's mmap touched, which grow with the file and are the kernel's to drop).
        d = args.duration

        def flatness(index):
            early = [s[index] for s in samples if 0.3 * d <= s[0] <= 0.6 * d and s[index] is not None]
            late = [s[index] for s in samples if s[0] >= 0.7 * d and s[index] is not None]
            m_early = statistics.median(early) if early else float("nan")
            m_late = statistics.median(late) if late else float("nan")
            allowed = max(0.10 * m_early, 20 * 1024)
            return m_early, m_late, allowed, bool(early and late) and abs(m_late - m_early) <= allowed

        def slope(index):
            """Least-squares growth after warm-up, KiB per 10,000 executions."""
            pts = [(s[2], s[index]) for s in samples if s[0] >= 0.3 * d and s[index] is not None]
            if len(pts) < 3:
                return float("nan")
            mx = sum(x for x, _ in pts) / len(pts)
            my = sum(y for _, y in pts) / len(pts)
            sxx = sum((x - mx) ** 2 for x, _ in pts)
            return sum((x - mx) * (y - my) for x, y in pts) / sxx * 10000 if sxx else float("nan")

        m_early, m_late, allowed, flat = flatness(1)
        a_early, a_late, a_allowed, anon_flat = flatness(3)

        statuses = Counter()
        for (what, status), n in load.status.items():
            statuses[(what, status)] += n
        ok_answers = all(isinstance(s, int) and 200 <= s < 300 for (_, s) in statuses)
        acked = len(load.acked)
        lines += [
            f"One server (SQLite, API token auth) for {load_s:.0f} s: {args.rate:g} executions/s of a Log flow, "
            f"1/s of a Log of `secret('S')`, 2/s `GET .../namespaces/{NS}/secrets`; RSS sampled every {args.interval:g} s.",
            "",
            f"- executions acknowledged: {acked} ({acked / load_s:.1f}/s); answers: "
            + ", ".join(f"{w} {s}: {n}" for (w, s), n in sorted(statuses.items(), key=str)),
            f"- trigger latency: p50 {ms(pct(load.latency, 50))}, p99 {ms(pct(load.latency, 99))}, max {ms(max(load.latency) if load.latency else float('nan'))}",
            f"- ended: " + ", ".join(f"{s} {n}" for s, n in states.items()) + f"; not ended {len(pending)}; the last ended {drained_s:.1f} s after the load stopped",
            f"- RSS median at 30–60% of the run: {m_early / 1024:.1f} MiB; over the last 30%: {m_late / 1024:.1f} MiB "
            f"(difference {(m_late - m_early) / 1024:+.1f} MiB, allowed ±{allowed / 1024:.1f} MiB); "
            f"when the load stopped: {(rss_load_end or 0) / 1024:.1f} MiB; after the checks (searches of every execution): {(rss_end or 0) / 1024:.1f} MiB",
            f"- anonymous RSS (heap) median at 30–60%: {a_early / 1024:.1f} MiB; over the last 30%: {a_late / 1024:.1f} MiB "
            f"(difference {(a_late - a_early) / 1024:+.1f} MiB)",
            f"- growth after warm-up (least squares): RSS {slope(1) / 1024:+.2f} MiB, anonymous {slope(3) / 1024:+.2f} MiB, "
            f"file-backed {slope(4) / 1024:+.2f} MiB, database file + WAL {slope(5) / 2**20:+.2f} MiB per 10,000 executions "
            f"(SQLite maps up to 256 MiB of the file: `PRAGMA mmap_size`, so RSS follows the pages it reads)",
            "",
        ]
        rows = [
            (f"{s[0]:.0f}", f"{s[1] / 1024:.1f}", f"{(s[3] or 0) / 1024:.1f}", f"{(s[4] or 0) / 1024:.1f}", f"{s[5] / 2**20:.1f}", s[2])
            for s in samples
        ]
        lines.append(table(["t (s)", "RSS (MiB)", "anonymous", "file-backed", "DB + WAL (MiB)", "executions acknowledged"], rows))
        lines.append("")
        checks.add("memory flat (median of the last 30% within 10% or 20 MiB of the median of 30–60%)", flat,
                   f"{m_early / 1024:.1f} → {m_late / 1024:.1f} MiB")
        checks.add("heap flat (the same on the anonymous RSS)", anon_flat,
                   f"{a_early / 1024:.1f} → {a_late / 1024:.1f} MiB (allowed ±{a_allowed / 1024:.1f})")
        checks.add("every acknowledged execution ended SUCCESS", not pending and set(states) <= {"SUCCESS"},
                   f"{dict(states)}, not ended {len(pending)}")
        checks.add("every request answered 2xx", ok_answers,
                   ", ".join(f"{w} {s}: {n}" for (w, s), n in statuses.items() if not (isinstance(s, int) and 200 <= s < 300)) or "all 2xx")
        checks.add("the load rate was held (at least 90% of the target)", acked / load_s >= 0.9 * (args.rate + 1),
                   f"{acked / load_s:.1f}/s of {args.rate + 1:g}/s")
        checks.add("the server stopped gracefully, no working directory left", code == 0 and not [w for w in work_left if "/" in w and not w.endswith(".lock")],
                   f"exit {code}; work/: {work_left[:5] or 'empty'}")
        lines.append(checks.markdown())
    except BaseException as e:
        log(f"soak stage error: {e!r}")
        checks.add("the stage ran to its end", False, f"{type(e).__name__}: {str(e)[:1500]}")
        lines.append(checks.markdown())
    finally:
        if server:
            try:
                server.stop(10)
            except Exception:
                pass
        write_summary(args.summary, "\n".join(lines))
    sys.exit(0 if checks.ok else 1)


if __name__ == "__main__":
    main()
