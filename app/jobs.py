"""`BackgroundJob`: work on a worker thread that the UI polls each frame and can cancel.

The worker never touches DearPyGui or GL. Subclasses implement `work(cancelled)`; a PerseError becomes a
one-line `error`, a KeyboardInterrupt or the subclass's own cancel exception sets `cancelled`, anything
else becomes an error line too (the app keeps running).
"""

from __future__ import annotations

import threading
from typing import Callable

from perse.errors import PerseError


class BackgroundJob:
    name = "job"
    cancel_exceptions: tuple[type[BaseException], ...] = (KeyboardInterrupt,)

    def __init__(self):
        self.progress = 0.0
        self.error: str | None = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"perse-{self.name}", daemon=True)

    def work(self, cancelled: Callable[[], bool]) -> None:
        raise NotImplementedError

    def start(self) -> "BackgroundJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.work(self._cancel.is_set)
        except self.cancel_exceptions:
            self.cancelled = True
        except PerseError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown in the UI; the studio keeps running
            self.error = f"{self.name} failed: {type(exc).__name__}: {exc}"
