"""Reading `.npz` files that may be damaged or hostile: plain arrays only, sizes checked before reading.

`numpy.load` trusts each member's `.npy` header and allocates what it claims before reading, so a
flipped byte in a header can ask for terabytes. `read_arrays` checks every header against the bytes the
member really holds, refuses Python objects, and raises `NpzError` (a ValueError) with one line.
"""

from __future__ import annotations

import tokenize
import zipfile
from pathlib import Path

import numpy as np

MAX_MEMBER_BYTES = 1 << 30


class NpzError(ValueError):
    """The file is not a readable .npz of plain arrays (the message says why, in one line)."""


def read_arrays(path: str | Path, keys: tuple[str, ...], max_bytes: int = MAX_MEMBER_BYTES) -> dict[str, np.ndarray]:
    """The arrays `keys` of the .npz at `path`; KeyError-free: missing keys raise NpzError naming them."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [k for k in keys if f"{k}.npy" not in names]
            if missing:
                raise NpzError(f"it lacks {', '.join(missing)}")
            return {key: _read_member(archive, f"{key}.npy", max_bytes) for key in keys}
    except NpzError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
            UnicodeDecodeError, SyntaxError, tokenize.TokenError, KeyError, MemoryError) as exc:
        text = str(exc).strip().splitlines()
        raise NpzError(text[0][:120] if text else type(exc).__name__) from None


def member_names(path: str | Path) -> set[str]:
    """The array names in an .npz (NpzError if it is not a zip file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise NpzError(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from None


def _read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> np.ndarray:
    info = archive.getinfo(name)
    if info.file_size > max_bytes:
        raise NpzError(f"{name} claims {info.file_size} bytes, more than {max_bytes}")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(member)
        if dtype.hasobject:
            raise NpzError(f"{name} holds Python objects, not plain numbers or text")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size < 0 or size > info.file_size:
            raise NpzError(f"{name} claims {size} bytes of data in a {info.file_size}-byte member")
        data = member.read(size)
    if len(data) != size:
        raise NpzError(f"{name} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
