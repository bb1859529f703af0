"""Avatar creation on a worker thread for the studio: stage text, progress, cancel (keeps finished stages)."""

from __future__ import annotations

from pathlib import Path

from app.jobs import BackgroundJob


class CreateJob(BackgroundJob):
    name = "creation"

    def __init__(self, portrait: str | Path, out: str | Path, quality: str, device: str = "auto",
                 resume: bool = False):
        super().__init__()
        self.args = dict(portrait=portrait, out=out, quality=quality, device=device, resume=resume)
        self.out = Path(out)
        self.stage = "starting"
        self.lines: list[str] = []
        self.summary: dict | None = None

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.stage, self.progress = stage, fraction

    def work(self, cancelled) -> None:
        from perse.create.pipeline import create_avatar

        self.summary = create_avatar(**self.args, print_fn=self.lines.append, cancel=cancelled,
                                     on_progress=self._on_progress)
        self.progress = 1.0
