"""Fault injection for crash tests: PAPERS_FAULT_AT=<point> kills the process (SIGKILL)
when it reaches that point of a publish. Unset in normal use: a no-op."""

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("PAPERS_FAULT_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
