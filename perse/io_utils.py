"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C or full disk therefore never leaves a half-written file under the target name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from perse.errors import PerseError


def check_writable_parent(path: str | os.PathLike) -> Path:
    """Return `path` as a Path after checking its folder exists and is writable (one-line error if not)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise PerseError(f"cannot write {path}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise PerseError(f"cannot write {path}: folder {parent} is not writable (choose another folder)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to `path`, else delete it.

    `suffix` defaults to the target's suffix, so writers that infer the format from the
    extension (imageio, PIL) still work on the temporary name.
    """
    path = check_writable_parent(path)
    suffix = path.suffix if suffix is None else suffix
    # The temporary name ends with the real suffix (".tmp.png") so format sniffing still works.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
