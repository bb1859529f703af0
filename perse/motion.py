"""Motion: head parameters from controls, the driven parameter vector, and recorded takes.

Below both `perse.drive` (which produces motion from a webcam) and `perse.export` (which renders it):

    head_params   batch-size-1 `HeadParams` from the controls the CLI, the studio and the presets expose
    ParamLayout   the driven parameter vector, D = E + 15: expression (E) | jaw_rot (3) | eye_left_rot (3) |
                  eye_right_rot (3) | global_rot (3) | translation (3, metres, model frame)
    Take          a parameter sequence with timestamps, saved as `.npz`; TakeRecorder collects one

Take files: ``timestamps`` (T,) float64 seconds from the take's start (increasing), ``params`` (T, D)
float32 in `ParamLayout` order, ``expression_names`` (E,) str, ``head_kind`` str, ``format`` str.
A take plays back on any avatar whose head has the same expression directions.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from perse.errors import PerseError
from perse.head.model import HeadModel, HeadParams


def head_params(expression: torch.Tensor | None = None, jaw: float = 0.0, identity: torch.Tensor | None = None,
                global_rot: tuple[float, float, float] = (0.0, 0.0, 0.0),
                gaze: tuple[float, float] | None = None,
                neck: tuple[float, float, float] | None = None) -> HeadParams:
    """Batch-size-1 HeadParams from controls.

    expression: (E,); jaw: opening in radians (a turn about +x); identity: (S,) or None for the avatar's
    own; global_rot, neck: axis-angle (3,) radians; gaze: (yaw, pitch) radians shared by both eyes.
    Controls left at None stay None in the result (zeros for the head model)."""
    eyes = None if gaze is None else torch.tensor([[gaze[1], gaze[0], 0.0]])  # pitch about x, yaw about y
    return HeadParams(
        identity=None if identity is None else identity[None],
        expression=None if expression is None else expression[None].float().clone(),
        jaw_rot=torch.tensor([[jaw, 0.0, 0.0]]),
        eye_left_rot=eyes,
        eye_right_rot=None if eyes is None else eyes.clone(),
        neck_rot=None if neck is None else torch.tensor([list(neck)], dtype=torch.float32),
        global_rot=torch.tensor([list(global_rot)], dtype=torch.float32),
    )


class ParamLayout:
    """Slices of the driven parameter vector for a head with `num_expression` expression directions."""

    FIELDS = ("jaw_rot", "eye_left_rot", "eye_right_rot", "global_rot", "translation")

    def __init__(self, num_expression: int):
        self.num_expression = int(num_expression)
        self.slices = {"expression": slice(0, self.num_expression)}
        start = self.num_expression
        for name in self.FIELDS:
            self.slices[name] = slice(start, start + 3)
            start += 3
        self.size = start

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]

    def zeros(self) -> np.ndarray:
        return np.zeros(self.size)

    def to_head_params(self, vector: np.ndarray) -> HeadParams:
        """(D,) vector -> HeadParams (B=1, float32) without identity (the avatar keeps its own)."""
        v = torch.as_tensor(np.asarray(vector, dtype=np.float32))
        fields = {name: v[sl].reshape(1, -1).clone() for name, sl in self.slices.items()}
        return HeadParams(neck_rot=torch.zeros(1, 3), **fields)

    def from_head_params(self, params: HeadParams) -> np.ndarray:
        """HeadParams (B=1) -> (D,) vector (None fields are zeros)."""
        out = self.zeros()
        for name, sl in self.slices.items():
            value = getattr(params, name)
            if value is not None:
                out[sl] = value.detach().reshape(-1).double().numpy()[: sl.stop - sl.start]
        return out


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
            raise PerseError(f"the frame rate must be positive (got {fps})", setting="fps")
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
        arrays = _read_take_arrays(path)
        fmt = arrays["format"]
        if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt) != TAKE_FORMAT:
            raise PerseError(f"{path} is not a PERSE take (format {fmt.tolist()!r}, not '{TAKE_FORMAT}'); "
                             "record one by driving the avatar (studio webcam panel, or perse drive)")
        problem = _take_problem(arrays)
        if problem:
            raise PerseError(f"take {path} is damaged: {problem}; record it again")
        return cls(arrays["timestamps"], arrays["params"], [str(n) for n in arrays["expression_names"]],
                   str(arrays["head_kind"]))


MAX_TAKE_BYTES = 1 << 30  # an hour at 60 fps is ~60 MB; larger is not a take
_TAKE_KEYS = ("format", "timestamps", "params", "expression_names", "head_kind")


def _read_take_arrays(path: Path) -> dict[str, np.ndarray]:
    """The take's arrays, read without trusting the file (see `perse.npz`)."""
    from perse.npz import NpzError, member_names, read_arrays

    try:
        if _TAKE_KEYS[0] not in member_names(path):
            raise PerseError(f"{path} is not a PERSE take (no '{TAKE_FORMAT}' format key); "
                             "record one by driving the avatar (studio webcam panel, or perse drive)")
        return read_arrays(path, _TAKE_KEYS, MAX_TAKE_BYTES)
    except NpzError as exc:
        raise PerseError(f"cannot read take {path}: {exc}; record it again") from None


def _take_problem(a: dict[str, np.ndarray]) -> str | None:
    """The first thing wrong with a take's arrays (None if nothing)."""
    ts, params, names, kind = (a[k] for k in _TAKE_KEYS[1:])
    if kind.shape != () or kind.dtype.kind != "U":
        return "head_kind is not a string"
    if names.ndim != 1 or names.dtype.kind != "U" or len(set(names.tolist())) != len(names):
        return "expression_names is not a list of distinct names"
    if ts.ndim != 1 or ts.dtype.kind not in "fiu" or len(ts) == 0:
        return f"timestamps have shape {ts.shape} and dtype {ts.dtype}, expected at least one number"
    size = ParamLayout(len(names)).size
    if params.ndim != 2 or params.shape != (len(ts), size) or params.dtype.kind not in "fiu":
        return (f"params have shape {params.shape}, expected ({len(ts)}, {size}) numbers for {len(ts)} "
                f"timestamps and {len(names)} expressions")
    if not (np.isfinite(ts).all() and np.isfinite(params).all()):
        return "non-finite timestamps or parameters"
    if not np.all(np.diff(ts) >= 0):
        return "timestamps out of order"
    return None


@dataclass
class TakeRecorder:
    """Collects samples (time, vector) while recording; `take()` returns them as a Take.

    start: when recording began, on the samples' clock; a sample from before it (a frame captured
    earlier and still in flight when recording began) is left out, so a take never outlasts its recording.
    """

    expression_names: list[str]
    head_kind: str = "builtin"
    start: float = -math.inf
    _times: list[float] = field(default_factory=list)
    _vectors: list[np.ndarray] = field(default_factory=list)

    def add(self, t: float, vector: np.ndarray) -> None:
        if t < self.start:
            return  # captured before recording began
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
