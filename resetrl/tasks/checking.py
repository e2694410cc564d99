"""Answer checking for math tasks: math-verify with a wall-clock limit of the project's own.

math-verify's own timeout uses `signal.alarm`, which fails off the main thread (Math-Verify issues
50 and 55) and is not there at all when switched off. Here every check runs in one long-lived worker
process (`python -m resetrl.tasks.checking`), whose main thread interrupts a check after
`CHECK_SECONDS` with its own timer (math-verify's timeouts are off). A check that runs over is scored
0 and counted in `CHECK_STATS.timeouts`, whichever thread asked; should the worker not answer even
then (stuck outside Python), the caller kills it after a grace period and the next check starts a
new one.

A list answer is not a single value: math-verify reads `\\boxed{0, 0}` as the set {0}, equal to a
gold 0, so answers whose number of top-level comma-separated items differs from the gold's are wrong
before math-verify is asked.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from dataclasses import dataclass

CHECK_SECONDS = 5.0  # the wall-clock limit of one check (math-verify's own default is 5 s)
_STARTUP_SECONDS = 120.0  # the worker imports SymPy once; slow on a loaded 2-core machine
_GRACE_SECONDS = 2.0  # how long past the limit the caller waits before it kills the worker
_OPENERS, _CLOSERS = "([{", ")]}"


@dataclass
class CheckStats:
    """Counts of this process's answer checks; `timeouts` are the checks that ran over the limit."""

    checks: int = 0
    timeouts: int = 0


CHECK_STATS = CheckStats()


def top_level_items(answer: str) -> int:
    """Comma-separated items outside brackets: "0, 0" -> 2, "(1, 2)" -> 1, "\\{1, 2\\}" -> 1.
    A comma between a digit and exactly three digits is a thousands separator ("1,000" -> 1)."""
    depth, items = 0, 1
    for position, char in enumerate(answer):
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0 and not _thousands_comma(answer, position):
            items += 1
    return items


def _thousands_comma(text: str, position: int) -> bool:
    after = text[position + 1:position + 5]
    return (position > 0 and text[position - 1].isdigit() and len(after) >= 3 and after[:3].isdigit()
            and (len(after) == 3 or not after[3].isdigit()))


class _Worker:
    """One `python -m resetrl.tasks.checking` process, answering one JSON line per request line."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "resetrl.tasks.checking"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        if self._read(_STARTUP_SECONDS) != "ready":
            self._stop()
            raise RuntimeError("the answer-checking worker did not start (is math-verify installed?)")

    def _read(self, seconds: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        line = self.process.stdout.readline().strip() if ready else ""
        return line or None  # nothing in time, or the worker died

    def _stop(self) -> None:
        # Forgotten first: the Scorer's time limit signals again while its deadline is overdue, and a
        # second signal landing in wait() must not leave the killed worker in place for the next check.
        process, self.process = self.process, None
        process.kill()
        process.wait()

    def equal(self, answer: str, gold: str, seconds: float) -> bool | None:
        """math-verify's verdict, or None when it took longer than `seconds`."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            try:
                self.process.stdin.write(json.dumps([answer, gold, seconds]) + "\n")
                self.process.stdin.flush()
                line = self._read(seconds + _GRACE_SECONDS)
            except BaseException:  # e.g. the Scorer's own time limit: the reply would answer the next check
                self._stop()
                raise
            if line is None:
                self._stop()
                return None
            return json.loads(line)


_WORKER = _Worker()


def math_equal(answer: str | None, gold: str, seconds: float | None = None) -> float:
    """1.0 when `answer` and `gold` are the same value for math-verify, within the wall-clock limit
    (`seconds`, default CHECK_SECONDS); 0.0 otherwise, or when the check runs over (counted)."""
    if answer is None or not answer.strip():
        return 0.0
    if top_level_items(answer) != top_level_items(gold):
        return 0.0
    CHECK_STATS.checks += 1
    verdict = _WORKER.equal(answer, gold, CHECK_SECONDS if seconds is None else seconds)
    if verdict is None:
        CHECK_STATS.timeouts += 1
        return 0.0
    return float(verdict)


class _OverTime(BaseException):  # not an Exception: math-verify and SymPy catch those
    pass


def _raise_over_time(signum, frame):
    raise _OverTime


def _serve() -> None:
    import logging
    import signal

    from math_verify import parse, verify

    logging.disable(logging.WARNING)  # math-verify warns on every call that its own timeout is off
    signal.signal(signal.SIGALRM, _raise_over_time)  # this is the worker's main thread: timers work
    print("ready", flush=True)
    for line in sys.stdin:
        answer, gold, seconds = json.loads(line)
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                verdict = bool(verify(parse(f"$\\boxed{{{gold}}}$", parsing_timeout=None),
                                      parse(f"$\\boxed{{{answer}}}$", parsing_timeout=None), timeout_seconds=None))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _OverTime:  # also when the timer fires just as the check ends
            verdict = None
        except Exception:  # a parser failure on model output is a wrong answer, not a crash
            verdict = False
        print(json.dumps(verdict), flush=True)


if __name__ == "__main__":
    _serve()
