"""Errors that name the user's mistake; the CLI prints them without a traceback."""


class ResetRLError(ValueError):
    """Bad input: a config value, an unknown name, a malformed data row. The message names it."""
