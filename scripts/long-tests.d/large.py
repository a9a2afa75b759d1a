"""Large-flows stage: `kestrel run` of a generated flow of N Log tasks, and of a flow with one
ForEach over N values from `range(1, N)`, each bounded by a timeout; wall time and peak RSS.

Usage: large.py --bin KESTREL --work DIR --n N --timeout S --summary FILE
Exit 0 when both runs end SUCCESS with every task run there, within the timeout.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Checks,
    Env,
    _die_with_parent,
    install_sigterm_handler,
    log,
    rss_kib,
    table,
    write_summary,
)


def tasks_flow(n):
    parts = ["id: many_tasks\nnamespace: large\ntasks:\n"]
    for i in range(n):
        parts.append(f'  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: "task {i}"\n')
    return "".join(parts)


def foreach_flow(n):
    return f"""id: many_values
namespace: large
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, {n}) }}}}"
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "value {{{{ taskrun.value }}}}"
"""


def run_measured(argv, env, out_path, timeout):
    """Runs argv; returns (exit code or 'timeout', wall seconds, peak RSS KiB, ru_maxrss KiB,
    the highest VmHWM polled KiB)."""
    with open(out_path, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        hwm = 0  # VmHWM polled
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.monotonic() - t0
                code = os.waitstatus_to_exitcode(status)
                proc.returncode = code
                # ru_maxrss: KiB on Linux, the kernel's own peak; VmHWM polled can miss a peak.
                return ("timeout" if timed_out else code), wall, max(hwm, usage.ru_maxrss), usage.ru_maxrss, hwm
            v = rss_kib(proc.pid, "VmHWM")
            if v:
                hwm = max(hwm, v)
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                os.kill(proc.pid, signal.SIGKILL)
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--summary", required=True)
    args = ap.parse_args()
    install_sigterm_handler()
    checks = Checks()
    rows = []
    notes = []
    lines = ["## Large flows", ""]
    try:
        for kind, make in (("tasks", tasks_flow), ("foreach", foreach_flow)):
            n = args.n
            while True:
                work = os.path.join(args.work, f"{kind}-{n}")
                os.makedirs(work, exist_ok=True)
                env = Env(args.bin, work, "")
                flow = os.path.join(work, f"{kind}.yml")
                with open(flow, "w") as f:
                    f.write(make(n))
                t0 = time.monotonic()
                v = env.cli("validate", flow, check=False, timeout=args.timeout)
                validate_s = time.monotonic() - t0
                if v.returncode == 0:
                    break
                message = (v.stdout + v.stderr).decode(errors="replace").strip().splitlines()
                notes.append(f"{kind}: N={n} refused by `kestrel validate`: {' / '.join(message[:3])[:300]}")
                if n <= 1000:
                    raise RuntimeError(f"{kind} refused even at N={n}")
                n //= 2
            size = os.path.getsize(flow)
            log(f"{kind}: N={n}, {size / 1e6:.1f} MB of YAML, validated in {validate_s:.1f} s; running")
            out = os.path.join(work, "run.json")
            code, wall, hwm, ru_max, polled = run_measured(
                [args.bin, "run", flow, "--output", "json"], env.env, out, args.timeout
            )
            state, runs, detail = None, None, ""
            try:
                with open(out, "rb") as f:
                    raw = f.read()
                doc = json.loads(raw[raw.index(b"{"):]) if b"{" in raw else None
                if doc:
                    state = doc.get("state")
                    if isinstance(state, dict):
                        state = state.get("current")
                    runs = len(doc.get("taskRuns") or doc.get("taskRunList") or [])
            except (ValueError, OSError) as e:
                detail = f"output not JSON: {e}"
                try:
                    with open(out, "rb") as f:
                        detail += " / " + f.read()[-300:].decode(errors="replace")
                except OSError:
                    pass
            expected_runs = n if kind == "tasks" else n + 1
            log(f"{kind}: exit {code}, {wall:.1f} s, peak RSS {hwm / 1024:.0f} MiB, {state}, {runs} task runs")
            rows.append(
                (
                    "N Log tasks" if kind == "tasks" else "one ForEach over `range(1, N)`, a Log each",
                    f"{n:,}",
                    f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB",
                    f"{validate_s:.1f} s",
                    f"{wall:.1f} s" if code != "timeout" else f"> {args.timeout:.0f} s (killed)",
                    f"{hwm / 1024:.0f} MiB (ru_maxrss {ru_max / 1024:.0f}, VmHWM polled {polled / 1024:.0f})",
                    f"{state} ({runs} task runs)" if state else f"exit {code} {detail}",
                )
            )
            checks.add(
                f"{kind}: `kestrel run` ended SUCCESS with {expected_runs:,} task runs within {args.timeout:.0f} s",
                code == 0 and state == "SUCCESS" and runs == expected_runs,
                f"exit {code}, {state}, {runs} task runs, {wall:.1f} s" + (f"; {detail}" if detail else ""),
            )
            if n != args.n:
                checks.add(f"{kind}: N={args.n:,} accepted", False, "; ".join(notes))
        lines.append(
            table(["flow", "N", "YAML", "`kestrel validate`", "`kestrel run` wall time", "peak RSS", "end"], rows)
        )
        lines += ["", "Each run in a fresh data directory, `kestrel run FLOW --output json`; peak RSS: the kernel's `ru_maxrss` of the process (wait4) and its VmHWM polled every 0.2 s.", ""]
        if notes:
            lines += [f"- {n}" for n in notes] + [""]
        lines.append(checks.markdown())
    except BaseException as e:
        log(f"large stage error: {e!r}")
        checks.add("the stage ran to its end", False, f"{type(e).__name__}: {str(e)[:1000]}")
        if rows:
            lines.append(table(["flow", "N", "YAML", "`kestrel validate`", "`kestrel run` wall time", "peak RSS", "end"], rows))
            lines.append("")
        lines.append(checks.markdown())
    finally:
        write_summary(args.summary, "\n".join(lines))
    sys.exit(0 if checks.ok else 1)


if __name__ == "__main__":
    main()
