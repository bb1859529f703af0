"""Avatar creation on a worker thread for the studio: stage text, progress, cancel (keeps finished stages)."""

from __future__ import annotations

import threading
from pathlib import Path

from perse.errors import PerseError


class CreateJob:
    def __init__(self, portrait: str | Path, out: str | Path, quality: str, device: str = "auto",
                 resume: bool = False):
        self.args = dict(portrait=portrait, out=out, quality=quality, device=device, resume=resume)
        self.out = Path(out)
        self.stage = "starting"
        self.progress = 0.0
        self.lines: list[str] = []
        self.error: str | None = None
        self.cancelled = False
        self.summary: dict | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perse-create", daemon=True)

    def start(self) -> "CreateJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.stage, self.progress = stage, fraction

    def _run(self) -> None:
        from perse.create.pipeline import create_avatar

        try:
            self.summary = create_avatar(**self.args, print_fn=self.lines.append, cancel=self._cancel.is_set,
                                         on_progress=self._on_progress)
            self.progress = 1.0
        except KeyboardInterrupt:
            self.cancelled = True
        except PerseError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the dialog; the studio keeps running
            self.error = f"creation failed: {type(exc).__name__}: {exc}"
