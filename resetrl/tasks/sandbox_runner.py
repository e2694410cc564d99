"""The script that runs inside the code sandbox: one program and its tests, one report line per test.

`sandbox.py` passes this file's text to `python -I -c` inside bubblewrap, and the payload (program,
test source, entry point, nonce) on stdin. The program's own prints go to /dev/null; after each test
the runner writes `<nonce> <test index> <1|0>` to the real stdout, so tests passed before a later one
hangs still count, and a program that prints lookalike lines without the nonce counts for nothing.
The parent imports `test_statements` from here too, so both sides count the same tests.
"""

from __future__ import annotations

import ast


def test_statements(test_source: str) -> tuple[list[ast.stmt], list[ast.stmt], str]:
    """HumanEval's `def check(candidate): ...` split into its top-level statements: (module-level
    prelude, check's statements, the name of check's argument). A statement holding an `assert`
    that can fail is a test; the others (assignments, imports) are set-up that later tests may use."""
    tree = ast.parse(test_source)
    check = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None)
    if check is None or not check.args.args:
        raise ValueError("the test source has no `def check(candidate)`")
    prelude = [node for node in tree.body if node is not check]
    return prelude, list(check.body), check.args.args[0].arg


def is_test(statement: ast.stmt) -> bool:
    """A statement holding an `assert` that can fail: HumanEval's `assert True, "..."` lines cannot."""
    return any(isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant)
               for node in ast.walk(statement))


def _run() -> None:
    import json
    import os
    import sys

    payload = json.loads(sys.stdin.read())
    nonce = payload.pop("nonce")
    report_fd = os.dup(1)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # the program's prints are not the report

    def report(index: int, passed: bool) -> None:
        os.write(report_fd, f"{nonce} {index} {int(passed)}\n".encode())

    prelude, statements, argument = test_statements(payload["test"])
    namespace = {"__name__": "solution"}
    try:
        exec(compile(payload["program"], "solution.py", "exec"), namespace)
        exec(compile(ast.Module(prelude, type_ignores=[]), "test.py", "exec"), namespace)
        namespace[argument] = namespace[payload["entry_point"]]
    except BaseException:  # the program does not even load: every test fails
        return
    index = 0
    for statement in statements:
        try:
            exec(compile(ast.Module([statement], type_ignores=[]), "test.py", "exec"), namespace)
            passed = True
        except BaseException:  # a failed assert, an error, or SystemExit from the program
            passed = False
        if is_test(statement):
            report(index, passed)
            index += 1


if __name__ == "__main__":
    _run()
