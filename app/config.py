"""The studio's small config file (`~/.config/perse/studio.json`): window size, recent files, looks file.

A missing file gives the defaults. A corrupt one (not JSON, wrong types) never stops the app: it is moved
aside as ``studio.json.bad``, the defaults are used, and `notice` says so for the status line.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perse.checks import is_int, is_str_list
from perse.io_utils import atomic_write_text
from perse.paths import config_dir

log = logging.getLogger(__name__)
MAX_RECENT = 8
MAX_CONFIG_BYTES = 16 << 20


def read_json_or_set_aside(path: Path) -> tuple[object | None, str | None]:
    """(parsed JSON or None if the file is missing, notice). An unreadable or corrupt file is renamed
    to ``<name>.bad`` (replacing an older one) so the app starts fresh; the notice says what happened."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes is too large for a settings file")
        return json.loads(path.read_bytes().decode("utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, set_aside(path, str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__)


def set_aside(path: Path, reason: str) -> str:
    """Rename a corrupt settings file to ``<name>.bad``; returns the notice for the status line."""
    bad = path.with_name(path.name + ".bad")
    try:
        os.replace(path, bad)
        where = f"moved to {bad.name}"
    except OSError as exc:
        where = f"could not be moved aside ({exc.strerror})"
    log.warning("corrupt settings file %s (%s): %s", path, reason, where)
    return f"{path.name} was corrupt ({reason}); {where}, starting with defaults"


@dataclass
class StudioConfig:
    window: tuple[int, int] = (1280, 800)
    panel_width: int = 380
    recent: list[str] = field(default_factory=list)
    looks_file: str = ""
    notice: str | None = field(default=None, compare=False)  # for the status line; not saved

    @staticmethod
    def path() -> Path:
        return config_dir() / "studio.json"

    @classmethod
    def load(cls) -> "StudioConfig":
        data, notice = read_json_or_set_aside(cls.path())
        if data is None:
            return cls(notice=notice)
        problem = _config_problem(data)
        if problem:
            return cls(notice=set_aside(cls.path(), problem))
        cfg = cls(window=tuple(data.get("window", (1280, 800))), panel_width=data.get("panel_width", 380),
                  recent=list(data.get("recent", []))[:MAX_RECENT], looks_file=data.get("looks_file", ""))
        cfg.window = (min(max(cfg.window[0], 400), 16384), min(max(cfg.window[1], 300), 16384))
        cfg.panel_width = min(max(cfg.panel_width, 200), 2000)
        return cfg

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "notice"}
        try:
            self.path().parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path(), json.dumps(data, indent=2))
        except OSError as exc:  # a read-only home must not stop the app from closing
            log.warning("cannot save studio config %s: %s", self.path(), exc)

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.recent = [p] + [r for r in self.recent if r != p]
        self.recent = self.recent[:MAX_RECENT]


def _config_problem(data: object) -> str | None:
    """What is wrong with a parsed studio.json (None if nothing)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    window = data.get("window", [1280, 800])
    if not (isinstance(window, list) and len(window) == 2 and all(is_int(v) for v in window)):
        return f"window is {window!r}, expected [width, height]"
    if not is_int(data.get("panel_width", 380)):
        return "panel_width is not a whole number"
    if not is_str_list(data.get("recent", [])):
        return "recent is not a list of paths"
    if not isinstance(data.get("looks_file", ""), str):
        return "looks_file is not a path"
    return None
