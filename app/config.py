"""The studio's small config file (`~/.config/perse/studio.json`): window size, recent files, looks file.

A missing or unreadable file gives the defaults; a corrupt one is ignored (and replaced on the next
save) rather than stopping the app.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perse.io_utils import atomic_write_text
from perse.paths import config_dir

log = logging.getLogger(__name__)
MAX_RECENT = 8


@dataclass
class StudioConfig:
    window: tuple[int, int] = (1280, 800)
    panel_width: int = 380
    recent: list[str] = field(default_factory=list)
    looks_file: str = ""

    @staticmethod
    def path() -> Path:
        return config_dir() / "studio.json"

    @classmethod
    def load(cls) -> "StudioConfig":
        try:
            data = json.loads(cls.path().read_text())
            cfg = cls(window=tuple(int(x) for x in data.get("window", (1280, 800)))[:2],
                      panel_width=int(data.get("panel_width", 380)),
                      recent=[str(p) for p in data.get("recent", [])][:MAX_RECENT],
                      looks_file=str(data.get("looks_file", "")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable studio config %s: %s", cls.path(), exc)
            return cls()
        cfg.window = (max(cfg.window[0], 400), max(cfg.window[1], 300))
        return cfg

    def save(self) -> None:
        try:
            self.path().parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path(), json.dumps(asdict(self), indent=2))
        except OSError as exc:  # a read-only home must not stop the app from closing
            log.warning("cannot save studio config %s: %s", self.path(), exc)

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.recent = [p] + [r for r in self.recent if r != p]
        self.recent = self.recent[:MAX_RECENT]
