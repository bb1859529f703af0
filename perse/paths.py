"""Locations of the project's run-time data (`assets/`, `shaders/`) and the user's config directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
SHADERS_DIR = REPO_ROOT / "shaders"

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
