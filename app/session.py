"""Studio autosave: the work in progress survives a crash or ``kill -9``.

What is kept (`~/.config/perse/session.json`, written atomically): the avatar it belongs to, every
attribute row, the expression and pose controls, looks A and B with alpha, the named looks, and the
recent takes (their paths; an unsaved recorded take is written beside it as ``session-take.npz``).

`RecentTakes` follows the drive session's take (`StudioState.drive`) into that list.
`Autosaver.tick()` runs once per main-loop iteration. It snapshots the state at most every
`CHECK_S` seconds and writes the snapshot once it has stopped changing for `QUIET_S`, or at the latest
`MAX_DELAY_S` after the first unsaved change: a kill loses at most the last ~2 seconds of edits.
The next start restores the session if it belongs to the avatar being opened. A corrupt session file
is set aside as ``session.json.bad`` and the studio starts fresh (the status line says so).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from app.config import read_json_or_set_aside, set_aside
from app.state import ATTR_RANGE, StudioState
from perse.avatar.latent import Look
from perse.checks import is_number, number_array_problem
from perse.errors import PerseError
from perse.io_utils import atomic_write_text
from perse.paths import config_dir

log = logging.getLogger(__name__)
SESSION_FORMAT = "perse-studio-session-1"
CHECK_S, QUIET_S, MAX_DELAY_S = 0.25, 0.5, 1.5
MAX_RECENT_TAKES = 8


def session_path() -> Path:
    return config_dir() / "session.json"


def unsaved_take_path() -> Path:
    return config_dir() / "session-take.npz"


# -- snapshot ----------------------------------------------------------------------------------------

def _codes(look: Look | None) -> dict | None:
    return None if look is None else look.to_dict()


def snapshot(state: StudioState, recent_takes: list[str]) -> dict:
    """The state worth keeping, as JSON-able values."""
    names = state.avatar.head.expression_names
    pose = state.pose
    return {
        "format": SESSION_FORMAT,
        "avatar": str(Path(state.path).resolve()),
        "attributes": {name: {"variant": row.variant, "weight": row.weight,
                              "sampled": None if row.sampled is None else row.sampled.tolist()}
                       for name, row in state.attributes.items()},
        "expression": {n: float(v) for n, v in zip(names, pose.expression.tolist()) if v != 0.0},
        "pose": {"jaw": pose.jaw, "gaze": list(pose.gaze), "neck": list(pose.neck), "head": list(pose.head)},
        "interpolation": {"look_a": _codes(state.interp.look_a), "look_b": _codes(state.interp.look_b),
                          "alpha": state.interp.alpha, "active": state.interp.active},
        "named_looks": {name: look.to_dict() for name, look in state.named_looks.items()},
        "recent_takes": list(recent_takes)[:MAX_RECENT_TAKES],
    }


# -- restore -----------------------------------------------------------------------------------------

def restore(state: StudioState, data: dict) -> list[str]:
    """Apply a snapshot to `state` (same avatar). Raises ValueError naming the first bad field; returns
    the recent take paths. Nothing is applied unless everything checks out."""
    from perse.looks import code_shapes, look_from_data

    reference = state.avatar.latent.reference_look()
    shapes = code_shapes(reference)

    def look(value, what: str) -> Look | None:
        if value is None:
            return None
        try:
            return Look({**reference.codes, **look_from_data(value, what, shapes).codes})
        except PerseError as exc:
            raise ValueError(str(exc)) from None

    rows = {}
    for name, row in _dict(data, "attributes").items():
        if name not in state.attributes or not isinstance(row, dict):
            raise ValueError(f"unknown attribute row {name!r}")
        spec = state.avatar.latent.category(name)
        if row.get("variant") not in spec.variants or not is_number(row.get("weight")):
            raise ValueError(f"attribute row {name!r} has no valid variant and weight")
        sampled = row.get("sampled")
        if sampled is not None and number_array_problem(name, sampled, shapes[name]):
            raise ValueError(f"attribute row {name!r} has a bad sampled code")
        rows[name] = (row["variant"], min(max(float(row["weight"]), ATTR_RANGE[0]), ATTR_RANGE[1]),
                      None if sampled is None else torch.tensor(sampled, dtype=torch.float32))
    names = state.avatar.head.expression_names
    expression = torch.zeros(len(names))
    for name, value in _dict(data, "expression").items():
        if name not in names or not is_number(value):
            raise ValueError(f"expression {name!r} is unknown or not a number")
        expression[names.index(name)] = float(value)
    pose = _dict(data, "pose")
    for key, size in (("gaze", 2), ("neck", 3), ("head", 3)):
        if number_array_problem(key, pose.get(key, [0.0] * size), (size,)):
            raise ValueError(f"pose {key} is not {size} numbers")
    if not is_number(pose.get("jaw", 0.0)):
        raise ValueError("pose jaw is not a number")
    interp = _dict(data, "interpolation")
    look_a, look_b = look(interp.get("look_a"), "look A"), look(interp.get("look_b"), "look B")
    alpha = interp.get("alpha", 0.0)
    if not is_number(alpha):
        raise ValueError("interpolation alpha is not a number")
    named = {str(n): look(v, f"look {n!r}") for n, v in _dict(data, "named_looks").items()}
    takes = data.get("recent_takes", [])
    if not isinstance(takes, list) or not all(isinstance(t, str) for t in takes):
        raise ValueError("recent_takes is not a list of paths")

    for name, (variant, weight, sampled) in rows.items():
        row = state.attributes[name]
        row.variant, row.weight, row.sampled = variant, weight, sampled
    state.pose.expression = expression
    state.pose.jaw = float(pose.get("jaw", 0.0))
    state.pose.gaze, state.pose.neck, state.pose.head = (tuple(float(v) for v in pose.get(k, [0.0] * n))
                                                         for k, n in (("gaze", 2), ("neck", 3), ("head", 3)))
    state.interp.look_a, state.interp.look_b, state.interp.alpha = look_a, look_b, float(alpha)
    state.interp.active = bool(interp.get("active")) and look_a is not None and look_b is not None
    state.named_looks = named
    state.touch()
    return takes[:MAX_RECENT_TAKES]


def _dict(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not a JSON object")
    return value


def load_session(state: StudioState) -> tuple[list[str], str | None]:
    """Restore the saved session into `state` if it belongs to this avatar: (recent takes, notice)."""
    path = session_path()
    data, notice = read_json_or_set_aside(path)
    if data is None:
        return [], notice
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        return [], set_aside(path, "not a studio session")
    if data.get("avatar") != str(Path(state.path).resolve()):
        return [], None  # another avatar's session: left as is until this one saves its own
    try:
        takes = restore(state, data)
    except ValueError as exc:
        return [], set_aside(path, str(exc)[:120])
    return takes, "restored the last session"


# -- recent takes -----------------------------------------------------------------------------------

class RecentTakes:
    """The recent take paths the session keeps, newest first, following the drive session's take: a
    recorded take that is not saved yet is written to `unsaved_take_path()` so that a kill keeps it."""

    def __init__(self):
        self.paths: list[str] = []
        self._seen: tuple | None = None  # (take object id, its path) last taken into the list

    def restore(self, drive, paths: list[str]) -> None:
        """Keep `paths`; the most recent take that still opens becomes the drive session's take again."""
        self.paths = list(paths)
        for path in paths:
            if not Path(path).is_file():
                continue
            try:
                drive.load_take(path)
            except PerseError as exc:
                log.warning("recent take %s not restored: %s", path, exc)
                continue
            if Path(path) == unsaved_take_path():
                drive.take_path = None  # still unsaved: the Webcam panel offers to save it
            self._seen = (id(drive.take), drive.take_path)
            return

    def track(self, drive) -> None:
        """Call once per tick: a new take (recorded, loaded or saved) goes to the front of the list."""
        key = (id(drive.take), drive.take_path)
        if drive.take is None or key == self._seen:
            return
        self._seen = key
        path = drive.take_path
        if path is None:
            try:
                unsaved_take_path().parent.mkdir(parents=True, exist_ok=True)
                path = drive.take.save(unsaved_take_path())
            except (PerseError, OSError) as exc:
                log.warning("cannot keep the unsaved take: %s", exc)
                return
        path = str(Path(path).resolve())
        self.paths = [path] + [t for t in self.paths if t != path]


# -- saving ------------------------------------------------------------------------------------------

class Autosaver:
    """Debounced, atomic autosave of a `StudioState` (see the module docstring). `clock` is injectable
    for tests; `takes()` returns the recent take paths to keep."""

    def __init__(self, get_state, takes=lambda: [], clock=time.monotonic):
        self.get_state, self.takes, self.clock = get_state, takes, clock
        self._written: str | None = None  # JSON of the last snapshot on disk
        self._pending: str | None = None
        self._changed_at = self._first_unsaved = self._checked_at = None
        self.error: str | None = None

    def tick(self) -> bool:
        """Call once per main-loop iteration; True when it wrote the session file."""
        now = self.clock()
        if self._checked_at is not None and now - self._checked_at < CHECK_S:
            return False
        self._checked_at = now
        text = json.dumps(snapshot(self.get_state(), self.takes()))
        if text != (self._pending or self._written):
            self._pending, self._changed_at = text, now
            self._first_unsaved = self._first_unsaved or now
        if self._pending is None or self._pending == self._written:
            self._pending = self._first_unsaved = None
            return False
        if now - self._changed_at >= QUIET_S or now - self._first_unsaved >= MAX_DELAY_S:
            return self._write(self._pending)
        return False

    def mark_saved(self) -> None:
        """The state as it is now is what the session file holds (just restored or just started)."""
        self._written = json.dumps(snapshot(self.get_state(), self.takes()))
        self._pending = self._first_unsaved = None

    def flush(self) -> bool:
        """Write now if anything changed (closing the window)."""
        self._checked_at = None
        text = json.dumps(snapshot(self.get_state(), self.takes()))
        return text != self._written and self._write(text)

    def _write(self, text: str) -> bool:
        try:
            session_path().parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(session_path(), text)
        except OSError as exc:  # a full or read-only disk must not stop editing; say it once
            if self.error is None:
                log.warning("cannot autosave the session to %s: %s", session_path(), exc)
            self.error = f"cannot autosave the session: {exc.strerror or exc}"
            return False
        self._written, self._pending, self._first_unsaved, self.error = text, None, None, None
        return True
