"""Health prober: GET /health (or PATH) on 127.0.0.1:PORT every INTERVAL seconds, each on a fresh
connection (as a load balancer's or an orchestrator's health check does), until STOP_FILE
exists. One line per probe in OUT: `start end status` (CLOCK_MONOTONIC seconds, which every
process of the machine shares; status 0 when no HTTP answer came: refused, reset, timeout).

A process of its own, so that the load threads of the driver (and their GIL) do not add
latency to what it measures.
"""

import os
import socket
import sys
import time


def probe(port, timeout, path="/health"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0
    except OSError:
        return 0
    finally:
        s.close()


def main():
    port, out, interval, stop_file = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    path = sys.argv[5] if len(sys.argv) > 5 else "/health"
    with open(out, "a", buffering=1) as f:
        next_at = time.monotonic()
        while not os.path.exists(stop_file):
            start = time.monotonic()
            status = probe(port, 2.0, path)
            end = time.monotonic()
            f.write(f"{start:.6f} {end:.6f} {status}\n")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()


if __name__ == "__main__":
    main()
