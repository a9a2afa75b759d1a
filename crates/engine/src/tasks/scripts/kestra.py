"""kestrel's stand-in for Kestra's `kestra` Python package (`from kestra import Kestra`).

It prints the lines of Kestra's script protocol, `::{...}::`, which kestrel reads back as
outputs, metrics and log entries: outputs, counter, timer, gauge and logger.
"""

import json
import logging
import time


class Kestra:
    """Sends outputs, metrics and log entries to kestrel."""

    @staticmethod
    def _send(message):
        print("::" + json.dumps(message) + "::", flush=True)

    @staticmethod
    def outputs(outputs):
        Kestra._send({"outputs": outputs})

    @staticmethod
    def _metric(name, kind, value, tags):
        Kestra._send(
            {"metrics": [{"name": name, "type": kind, "value": value, "tags": tags or {}}]}
        )

    @staticmethod
    def counter(key, count, tags=None):
        Kestra._metric(key, "counter", count, tags)

    @staticmethod
    def gauge(key, value, tags=None):
        Kestra._metric(key, "gauge", value, tags)

    @staticmethod
    def timer(key, duration, tags=None):
        """`duration` in seconds, or a function to run and time."""
        if callable(duration):
            start = time.perf_counter()
            duration()
            duration = time.perf_counter() - start
        Kestra._metric(key, "timer", duration, tags)

    @staticmethod
    def logger():
        logger = logging.getLogger("Kestra")
        if not logger.handlers:
            logger.addHandler(_Handler())
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
        return logger


class _Handler(logging.Handler):
    """Sends each record as a `logs` entry at Kestra's name of its level."""

    LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}

    def emit(self, record):
        level = self.LEVELS.get(record.levelname, record.levelname)
        Kestra._send({"logs": [{"level": level, "message": self.format(record)}]})

