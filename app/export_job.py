"""A background export: renders on a worker thread, reports progress and ETA, can be cancelled."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from app.jobs import BackgroundJob
from perse.avatar.model import Avatar
from perse.export.render_sequence import ExportSettings, export_preset
from perse.export.video import ExportCancelled


class ExportJob(BackgroundJob):
    name = "export"
    cancel_exceptions = (ExportCancelled, KeyboardInterrupt)

    def __init__(self, avatar: Avatar, settings: ExportSettings):
        super().__init__()
        self.avatar = copy.deepcopy(avatar)  # the viewport keeps using (and caching on) the original
        self.settings = settings
        self.frames_done = 0
        self.total_frames = settings.frames  # the take preset's length is the take's, known at the first frame
        self.result: Path | None = None
        self._started = time.perf_counter()

    def eta_seconds(self) -> float | None:
        if self.progress <= 0:
            return None
        elapsed = time.perf_counter() - self._started
        return elapsed * (1 - self.progress) / self.progress

    def _on_frame(self, i: int, total: int) -> None:
        self.frames_done, self.total_frames = i, total
        self.progress = i / max(total, 1)

    def work(self, cancelled) -> None:
        self.result = export_preset(self.avatar, self.settings, cancel=cancelled, on_frame=self._on_frame)
