"""Locations of the project's run-time data (`assets/`, `shaders/`) and the user's config directory.

The data lives in the repository's top-level ``assets/`` and ``shaders/`` folders. A wheel (or a regular
``pip install .``) ships them inside the package as ``perse/assets`` and ``perse/shaders`` (see
``setup.py``); a checkout, used editable or from ``PYTHONPATH``, reads them from the repository.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    """``perse/<name>`` as installed package data, else the checkout's top-level ``<name>/`` folder."""
    packaged = resources.files("perse") / name
    if packaged.is_dir():
        return Path(str(packaged))
    return REPO_ROOT / name


ASSETS_DIR = _data_dir("assets")
SHADERS_DIR = _data_dir("shaders")

DEFAULT_AVATAR = ASSETS_DIR / "default.perse"
BUILTIN_HEAD = ASSETS_DIR / "builtin_head.safetensors"


def config_dir() -> Path:
    """The user's PERSE config directory (``$XDG_CONFIG_HOME/perse`` or ``~/.config/perse``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "perse"


def resolve_avatar_path(name: str | os.PathLike) -> Path:
    """Map the CLI's avatar argument to a path: ``default`` means the bundled avatar."""
    if str(name) == "default":
        return DEFAULT_AVATAR
    return Path(name)
