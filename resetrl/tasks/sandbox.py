"""Running untrusted programs (a model's code answers) in a sandbox, to score them by their tests.

Each program runs in its own process inside bubblewrap (`bwrap`, Debian package `bubblewrap`):
- no network: a new network namespace holds only a loopback device that is down;
- no user files: the new root is empty but for read-only /usr, /lib*, /bin and the Python
  installation; the home folder, the project and the cache are not there;
- no writes outside a temporary folder: the root is remounted read-only; /tmp is a fresh tmpfs
  of TMP_BYTES, gone when the program ends;
- a wall-clock limit: the whole sandbox (a PID namespace: every process the program started) is
  killed after `seconds`;
- resource limits set by `prlimit` before bwrap starts (inherited by everything inside): address
  space `memory_mb`, CPU time, file size (also caps what reaches the output file), and at most
  NPROC processes. A process limit only holds for a non-root user, so as root the program is run
  as `nobody` (setpriv, all capabilities dropped, no new privileges).
Without bwrap, or when bwrap cannot create its namespaces, scoring stops with an error: there is
no unsandboxed fallback. `docs/tasks.md` lists what tests/test_sandbox.py proves.

A program that digs the runner's nonce out of its own process could forge its report; the
sandbox protects the machine, not the reward from a deliberate forgery (as HumanEval's own harness).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from resetrl.errors import ResetRLError
from resetrl.tasks import sandbox_runner

NOBODY = 65534
NPROC = 32  # processes of the sandbox user at once: a fork bomb stops here
TMP_BYTES = 16 << 20
OUTPUT_BYTES = 1 << 20
SYSTEM_FOLDERS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
# Read once, with the module: the runner inside and `test_statements` outside stay the same code.
RUNNER_SOURCE = Path(sandbox_runner.__file__).read_text()


@dataclass
class TestResult:
    passed: int
    total: int
    timed_out: bool

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def bwrap_command(python: str) -> list[str]:
    """bubblewrap's arguments: what the sandbox sees and may do (the module docstring says why)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise ResetRLError("code rewards run programs in a bubblewrap sandbox and `bwrap` is not installed: "
                           "apt-get install -y bubblewrap (there is no unsandboxed fallback)")
    command = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--die-with-parent", "--new-session", "--clearenv",
               "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp"]
    for folder in SYSTEM_FOLDERS:
        command += ["--ro-bind-try", folder, folder]
    for prefix in sorted({sys.base_prefix, sys.prefix, str(Path(python).resolve().parent.parent)}):
        command += ["--ro-bind", prefix, prefix]
    command += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
                "--chdir", "/tmp", "--remount-ro", "/"]
    if os.geteuid() == 0:
        # Root is exempt from the process limit: run the program as nobody, without capabilities.
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:
        command += ["--unshare-user", "--"]
    return command + [python, "-I", "-c", RUNNER_SOURCE]


def limits_command(memory_mb: int, seconds: float, processes: int) -> list[str]:
    """`prlimit` in front of bwrap: limits it and everything inside inherit. (A preexec_fn that sets
    them is not safe in a process with threads, as a training run is.)"""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise ResetRLError("code rewards need `prlimit` (Debian package util-linux) for the sandbox's limits")
    return [prlimit, f"--as={memory_mb << 20}", f"--cpu={int(seconds) + 1}", f"--fsize={OUTPUT_BYTES}",
            f"--nproc={processes}", "--core=0", "--"]


def _user_processes() -> int:
    """Processes this (non-root) user runs now: the process limit is counted per user."""
    uid, count = str(os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            count += any(line.split()[1] == uid for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except OSError:
            continue
    return count


def _kill_sandbox(process: subprocess.Popen, info_fd: int) -> None:
    """Kill the sandbox's PID 1, so the kernel kills every process in its PID namespace, and return
    once bwrap has reaped it: nothing the program started outlives the call."""
    try:
        os.set_blocking(info_fd, False)
        sandbox_init = json.loads(os.read(info_fd, 4096).decode())["child-pid"]
        os.kill(sandbox_init, signal.SIGKILL)
        process.wait(timeout=10)
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        pass
    process.kill()
    process.wait()


def run_tests(program: str, test_source: str, entry_point: str, seconds: float = 5.0,
              memory_mb: int = 512) -> TestResult:
    """Run `program` and the tests of HumanEval-style `test_source` (def check(candidate)) in the
    sandbox; the tests passed within `seconds` of wall-clock time count."""
    _, statements, _ = sandbox_runner.test_statements(test_source)
    total = sum(sandbox_runner.is_test(statement) for statement in statements)
    nonce = secrets.token_hex(16)
    processes = NPROC if os.geteuid() == 0 else _user_processes() + NPROC
    payload = {"program": program, "test": test_source, "entry_point": entry_point, "nonce": nonce}
    bwrap = bwrap_command(os.path.realpath(sys.executable))
    limits = limits_command(memory_mb, seconds, processes)
    info_read, info_write = os.pipe()  # bwrap writes the sandbox's PID 1 here (--info-fd)
    command = limits + bwrap[:1] + ["--info-fd", str(info_write)] + bwrap[1:]
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=errors, pass_fds=(info_write,))
        os.close(info_write)
        timed_out = False
        try:
            process.communicate(json.dumps(payload).encode(), timeout=seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_sandbox(process, info_read)
        except BrokenPipeError:  # the sandbox did not read its stdin: it failed to start
            process.wait()
        except BaseException:  # e.g. the Scorer's own time limit: nothing may outlive the call
            _kill_sandbox(process, info_read)
            raise
        finally:
            os.close(info_read)
        output.seek(0)
        lines = output.read(OUTPUT_BYTES).decode(errors="replace").splitlines()
        errors.seek(0)
        error_text = errors.read(4000)
    passed = {line.split()[1] for line in lines if line.startswith(nonce + " ") and line.endswith(" 1")}
    reported = any(line.startswith(nonce + " ") for line in lines)
    if not reported and not timed_out and error_text.startswith("bwrap:"):
        raise ResetRLError(f"the code sandbox could not start: {error_text.strip().splitlines()[0]}")
    return TestResult(len(passed), total, timed_out)
