"""User-facing errors.

`PerseError` carries a one-line message that says what is wrong and what to do. The CLI and the
studio print it as is (no traceback) and the CLI exits with code 2.

Messages name settings in words ("the morph preset needs a category or a second look"), never a
front end's controls. `setting` names the setting(s) to change, so that a front end can point at its
own control: the CLI adds its flag (`perse.cli.common.phrase_error`).
"""

from __future__ import annotations


class PerseError(Exception):
    """An error caused by the user's input or environment, with a one-line, actionable message.

    setting: the name, or names, of the settings the user should change (the keyword names of the
    engine call: "backend", "flame", "look_b", ...); empty when no single setting is at fault.
    """

    def __init__(self, message: str = "", setting: str | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings: tuple[str, ...] = (setting,) if isinstance(setting, str) else tuple(setting)
