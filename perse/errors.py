"""User-facing errors.

`PerseError` carries a one-line message that says what is wrong and what to do. The CLI and the
studio print it as is (no traceback) and the CLI exits with code 2.
"""


class PerseError(Exception):
    """An error caused by the user's input or environment, with a one-line, actionable message."""
