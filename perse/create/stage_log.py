"""The stage log of `perse create`: ``WORK/stages.json`` (what ``--resume`` skips) and progress lines.

``stages.json`` maps each finished stage, in the order finished, to what it recorded::

    {"detect": {"seconds": 1.2, "num_faces": 1, ...}, "fit": {"seconds": 0.8, ...}, ...}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from perse.io_utils import atomic_write_text

LOG_FILE = "stages.json"


class StageLog:
    """Prints one line per stage with elapsed time and the overall ETA; remembers finished stages.

    stages: the stage names in run order. costs: the expected seconds of each (same order), which
    weigh the overall ETA and progress fraction.
    cancel: polled before every stage (and by stages that poll it within); True stops with
        KeyboardInterrupt. on_progress(stage, fraction): overall progress in [0, 1] for a UI.
    """

    def __init__(self, work: Path, stages: Sequence[str], costs: Sequence[float],
                 print_fn: Callable[[str], None] = print, cancel: Callable[[], bool] | None = None,
                 on_progress: Callable[[str, float], None] | None = None):
        self.path = work / LOG_FILE
        self.stages = tuple(stages)
        self.costs = tuple(costs)
        self.print = print_fn
        self.cancel = cancel
        self.on_progress = on_progress
        self.done: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def is_done(self, stage: str) -> bool:
        return stage in self.done

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel()

    def eta(self, stage: str) -> float:
        """Expected seconds from the start of `stage` to the end, counting only unfinished stages."""
        i = self.stages.index(stage)
        return sum(self.costs[j] for j in range(i, len(self.stages)) if self.stages[j] not in self.done)

    def progress(self, stage: str, within: float = 0.0) -> None:
        """Report overall progress: finished stages plus `within` (0..1) of `stage`, weighted by cost."""
        if self.on_progress is None:
            return
        i = self.stages.index(stage)
        done = sum(self.costs[:i]) + within * self.costs[i]
        self.on_progress(stage, done / sum(self.costs))

    def start(self, stage: str) -> float:
        """Announce `stage` (raises KeyboardInterrupt if cancelled); returns its start time."""
        if self.cancelled():
            raise KeyboardInterrupt(f"cancelled before {stage}")
        self.progress(stage)
        i = self.stages.index(stage)
        self.print(f"[{i + 1}/{len(self.stages)}] {stage} ... (about {self.eta(stage) / 60:.0f} min left overall)")
        return time.perf_counter()

    def finish(self, stage: str, started: float, **info) -> None:
        """Record `stage` as finished (written atomically: a crash never leaves a half-written log)."""
        self.done[stage] = {"seconds": round(time.perf_counter() - started, 1), **info}
        atomic_write_text(self.path, json.dumps(self.done, indent=1))
        self.print(f"      {stage} done in {self.done[stage]['seconds']} s")
