"""The stored built-in head, ``assets/builtin_head.safetensors``, read at run time.

The generator that writes it is the build-time package `perse.head.builtin`; run-time code reads the
stored asset through this module (via `perse.head.load_head_model` or `perse.head.load_builtin_head`)
and never imports the generator.
"""

from __future__ import annotations

from pathlib import Path

from perse.errors import PerseError
from perse.head.model import HeadData, HeadModel

GENERATOR_COMMAND = "python -m perse.head.builtin --out assets/builtin_head.safetensors"


def load_builtin_head(path: str | Path | None = None) -> HeadModel:
    """The built-in head as a :class:`HeadModel` (reads ``assets/builtin_head.safetensors``)."""
    from perse.paths import BUILTIN_HEAD

    path = Path(path) if path is not None else BUILTIN_HEAD
    if not path.is_file():
        raise PerseError(f"built-in head model {path} is missing; regenerate it with `{GENERATOR_COMMAND}`")
    try:
        data = HeadData.load(path)
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise PerseError(f"built-in head model {path} is unreadable ({exc}); regenerate it with "
                         f"`{GENERATOR_COMMAND}`") from exc
    return HeadModel(data)
