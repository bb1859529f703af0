"""Recorded takes: a parameter sequence with timestamps, saved as `.npz`.

File keys: ``timestamps`` (T,) float64 seconds from the take's start (increasing), ``params`` (T, D)
float32 in `ParamLayout` order, ``expression_names`` (E,) str, ``head_kind`` str, ``format`` str.
A take plays back on any avatar whose head has the same expression directions.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perse.drive.retarget import ParamLayout
from perse.errors import PerseError
from perse.head.model import HeadModel, HeadParams

TAKE_FORMAT = "perse-take-1"


@dataclass
class Take:
    """timestamps: (T,) seconds, increasing; params: (T, D); expression_names: the head's E names."""

    timestamps: np.ndarray
    params: np.ndarray
    expression_names: list[str]
    head_kind: str = "builtin"

    def __post_init__(self):
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        self.params = np.asarray(self.params, dtype=np.float32)
        if self.params.ndim != 2 or self.params.shape[0] != self.timestamps.shape[0]:
            raise ValueError(f"take params {self.params.shape} do not match {self.timestamps.shape[0]} timestamps")
        size = ParamLayout(len(self.expression_names)).size
        if self.params.shape[1] != size:
            raise ValueError(f"take params have {self.params.shape[1]} columns; "
                             f"{len(self.expression_names)} expressions need {size}")

    @property
    def layout(self) -> ParamLayout:
        return ParamLayout(len(self.expression_names))

    @property
    def num_frames(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def duration(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0]) if self.num_frames else 0.0

    def vector_at(self, t: float) -> np.ndarray:
        """(D,) parameters at time t (seconds from the start), linearly interpolated, held at the ends."""
        ts = self.timestamps - self.timestamps[0]
        return np.array([np.interp(t, ts, self.params[:, d]) for d in range(self.params.shape[1])])

    def frame_count(self, fps: float) -> int:
        """Frames of the take played at a steady `fps`: floor(duration * fps) + 1."""
        if fps <= 0:
            raise PerseError(f"--fps must be positive (got {fps})")
        return int(np.floor(self.duration * fps + 1e-9)) + 1

    def resample(self, fps: float) -> np.ndarray:
        """(N, D) parameters at a steady `fps` covering the take (N = `frame_count(fps)`)."""
        ts = self.timestamps - self.timestamps[0]
        times = np.arange(self.frame_count(fps)) / fps
        return np.stack([np.interp(times, ts, self.params[:, d]) for d in range(self.params.shape[1])], axis=1)

    def head_params(self, fps: float) -> list[HeadParams]:
        """The take resampled at `fps`, as one HeadParams (B=1) per frame."""
        layout = self.layout
        return [layout.to_head_params(v) for v in self.resample(fps)]

    def check_head(self, head: HeadModel, source: str = "the take") -> None:
        """PerseError unless the take's expression directions are the head's."""
        if list(head.expression_names) != list(self.expression_names):
            raise PerseError(f"{source} was recorded for a head with {len(self.expression_names)} expressions "
                             f"({self.head_kind}); this avatar's head has {head.num_expression} "
                             f"({head.kind}): record the take with this avatar")

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        from perse.io_utils import atomic_write_bytes, check_writable_parent

        if self.num_frames == 0:
            raise PerseError("the take is empty (no frames were recorded); nothing to save")
        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise PerseError(f"cannot save take {path}: use a .npz file name")
        check_writable_parent(path)
        buffer = io.BytesIO()
        np.savez(buffer, timestamps=self.timestamps, params=self.params,
                 expression_names=np.array(self.expression_names, dtype=str),
                 head_kind=np.array(self.head_kind), format=np.array(TAKE_FORMAT))
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Take":
        """Read a take; PerseError with one line for a missing, foreign or damaged file."""
        path = Path(path)
        if not path.is_file():
            raise PerseError(f"take not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data.get("format", "")) != TAKE_FORMAT:
                    raise PerseError(f"{path} is not a PERSE take (no '{TAKE_FORMAT}' format key); "
                                     "record one with the studio's webcam panel or perse drive --record")
                take = cls(data["timestamps"], data["params"], [str(n) for n in data["expression_names"]],
                           str(data["head_kind"]))
        except PerseError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise PerseError(f"cannot read take {path}: {exc}") from None
        if take.num_frames == 0:
            raise PerseError(f"take {path} has no frames")
        if not np.all(np.diff(take.timestamps) >= 0) or not np.isfinite(take.params).all():
            raise PerseError(f"take {path} is damaged (timestamps out of order or non-finite parameters)")
        return take


@dataclass
class TakeRecorder:
    """Collects samples (time, vector) while recording; `take()` returns them as a Take."""

    expression_names: list[str]
    head_kind: str = "builtin"
    _times: list[float] = field(default_factory=list)
    _vectors: list[np.ndarray] = field(default_factory=list)

    def add(self, t: float, vector: np.ndarray) -> None:
        if self._times and t <= self._times[-1]:
            return  # the same sample seen twice
        self._times.append(float(t))
        self._vectors.append(np.asarray(vector, dtype=np.float32).copy())

    def __len__(self) -> int:
        return len(self._times)

    def take(self) -> Take:
        D = ParamLayout(len(self.expression_names)).size
        params = np.stack(self._vectors) if self._vectors else np.zeros((0, D), np.float32)
        times = np.asarray(self._times) - (self._times[0] if self._times else 0.0)
        return Take(times, params, list(self.expression_names), self.head_kind)
