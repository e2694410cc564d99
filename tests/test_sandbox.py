"""The code sandbox: hostile programs get reward 0 and change nothing outside; honest ones are scored
by the fraction of tests they pass. Runs real bubblewrap (CI installs it: .ci/run)."""

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from resetrl.errors import ResetRLError
from resetrl.tasks.sandbox import NOBODY, run_tests

TESTS = """
def check(candidate):
    assert candidate(1) == 1
    assert candidate(2) == 2
    offset = 1
    assert candidate(3) == 2 + offset
    assert all(candidate(x) == x for x in range(4, 6))
    assert True, "HumanEval's no-op line: it cannot fail, so it is not a test"
"""
LIMIT = 3.0


def score(program: str, seconds: float = LIMIT):
    started = time.monotonic()
    result = run_tests(program, TESTS, "f", seconds=seconds, memory_mb=256)
    return result, time.monotonic() - started


def sandbox_user_processes() -> int:
    """Processes of the user programs run as: nobody when we are root, else ourselves."""
    uid, count = str(NOBODY if os.geteuid() == 0 else os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        count += uids.split()[1] == uid
    return count


def test_correct_program_scores_one_and_half_right_scores_half():
    result, _ = score("def f(x):\n    return x\n")
    assert (result.passed, result.total, result.fraction) == (4, 4, 1.0)
    result, _ = score("def f(x):\n    return x if x < 3 else -x\n")
    assert (result.passed, result.total, result.fraction) == (2, 4, 0.5)


def test_a_program_that_loops_forever_is_stopped_at_the_wall_clock_limit():
    result, elapsed = score("def f(x):\n    while True:\n        pass\n", seconds=1.5)
    assert result.fraction == 0.0 and result.timed_out
    assert elapsed < 1.5 + 2.0
    # Tests passed before the one that hangs still count.
    result, _ = score("def f(x):\n    while x > 2:\n        pass\n    return x\n", seconds=1.5)
    assert result.passed == 2 and result.timed_out


def test_unbounded_allocation_hits_the_memory_limit():
    result, elapsed = score("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\ndef f(x):\n    return x\n")
    assert result.fraction == 0.0
    assert not result.timed_out and elapsed < LIMIT  # a MemoryError, not the clock, ended it


def test_a_fork_bomb_is_contained_and_leaves_no_process_behind():
    before = sandbox_user_processes()
    result, elapsed = score("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
                            "def f(x):\n    return x\n", seconds=2.0)
    assert result.fraction == 0.0 and result.timed_out and elapsed < 2.0 + 3.0
    assert sandbox_user_processes() == before  # run_tests returns after the whole sandbox is gone


def test_no_network_even_to_the_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    program = ("import socket\ndef f(x):\n"
               f"    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n    return x\n")
    result, _ = score(program)
    server.settimeout(0.5)  # a connection that got through would wait in the backlog
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()
    assert result.fraction == 0.0
    # Control: the same function without the connection scores 1.0, so the socket is what failed.
    assert score(program.replace("socket.create_connection", "(lambda *a, **k: None)").replace(".sendall(b'leak')", ""))[0].fraction == 1.0


def test_no_writes_to_home_or_project_and_no_reads_of_user_files(tmp_path):
    marker = f"resetrl-sandbox-{uuid.uuid4().hex}"
    secret = Path.home() / f".{marker}-secret"
    secret.write_text("42")
    targets = [Path.home() / marker, Path.cwd() / marker, Path(__file__).parent / marker]
    try:
        writes = "".join(f"    open({str(target)!r}, 'w').write('x')\n" for target in targets)
        result, _ = score(f"def f(x):\n{writes}    return x\n")
        assert result.fraction == 0.0
        assert not any(target.exists() for target in targets)
        result, _ = score(f"def f(x):\n    return int(open({str(secret)!r}).read()) * 0 + x\n")
        assert result.fraction == 0.0
        # Its own temporary folder is writable.
        result, _ = score("def f(x):\n    open('/tmp/scratch', 'w').write(str(x))\n    return int(open('/tmp/scratch').read())\n")
        assert result.fraction == 1.0
    finally:
        secret.unlink()
        for target in targets:
            target.unlink(missing_ok=True)


def test_a_forged_report_counts_for_nothing():
    program = "import os\nfor i in range(4):\n    print(f'x {i} 1')\nos.write(1, b'0 0 1\\n')\nos._exit(0)\n"
    result, _ = score(program)
    assert result.passed == 0


def test_without_bwrap_it_is_an_error_not_an_unsandboxed_run(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ResetRLError, match="apt-get install -y bubblewrap"):
        score("def f(x):\n    return x\n")
