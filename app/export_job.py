"""A background export: renders on a worker thread, reports progress, can be cancelled.

The worker never touches DearPyGui or GL; the UI polls `progress`, `done`, `error` and `result` each frame.
"""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

from perse.avatar.model import Avatar
from perse.errors import PerseError
from perse.export.render_sequence import ExportSettings, export_preset
from perse.export.video import ExportCancelled


class ExportJob:
    def __init__(self, avatar: Avatar, settings: ExportSettings):
        self.avatar = copy.deepcopy(avatar)  # the viewport keeps using (and caching on) the original
        self.settings = settings
        self.progress = 0.0
        self.frames_done = 0
        self.error: str | None = None
        self.result: Path | None = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="perse-export", daemon=True)

    def start(self) -> "ExportJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def eta_seconds(self) -> float | None:
        if self.progress <= 0:
            return None
        elapsed = time.perf_counter() - self._started
        return elapsed * (1 - self.progress) / self.progress

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _on_frame(self, i: int, total: int) -> None:
        self.frames_done = i
        self.progress = i / max(total, 1)

    def _run(self) -> None:
        try:
            self.result = export_preset(self.avatar, self.settings, cancel=self._cancel.is_set,
                                        on_frame=self._on_frame)
        except ExportCancelled:
            self.cancelled = True
        except PerseError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the status line; the app keeps running
            self.error = f"export failed: {type(exc).__name__}: {exc}"
