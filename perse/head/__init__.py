"""Parametric heads in FLAME's data layout: the model, official FLAME loading, the built-in head."""

from perse.head.flame import load_flame, require_landmarks
from perse.head.model import JOINT_NAMES, HeadData, HeadModel, HeadOutput, HeadParams
from perse.head.registry import identify_head, load_head_model


def load_builtin_head() -> HeadModel:
    """The built-in head model, read from its stored asset (`perse.head.builtin_asset`; the generator
    that writes it is the build-time package `perse.head.builtin`).

    Imported lazily so `import perse.head` works without loading the built-in head.
    """
    from perse.head.builtin_asset import load_builtin_head as _load_builtin_head

    return _load_builtin_head()


__all__ = [
    "HeadData",
    "HeadModel",
    "HeadOutput",
    "HeadParams",
    "JOINT_NAMES",
    "identify_head",
    "load_builtin_head",
    "load_flame",
    "load_head_model",
    "require_landmarks",
]
