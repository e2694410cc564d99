"""Errors that name the user's mistake; the CLI prints them without a traceback."""


class ResetRLError(ValueError):
    """Bad input: a config value, an unknown name, a malformed data row. The message names it."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (or its type when it has none): enough to say
    why in a one-line ResetRLError."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during a run, after the run folder was left consistent; the message says where
    the run stopped and how to continue it. A KeyboardInterrupt, so Python callers see one."""
