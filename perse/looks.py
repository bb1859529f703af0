"""Look files: one look ``{category: code}`` or named looks ``{name: {category: code}}``, as JSON.

Reading checks everything before a look reaches the avatar: the JSON shape, every code a list of finite
numbers of the avatar's code length, every category one the avatar has. Each refusal is a one-line
`PerseError` naming the file and the problem. Missing categories keep the reference look (`complete`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from perse.avatar.latent import Look
from perse.checks import number_array_problem
from perse.errors import PerseError
from perse.io_utils import atomic_write_text

MAX_LOOK_FILE_BYTES = 64 << 20  # far more than any looks file; a bigger one is not a looks file


def read_json(path: str | os.PathLike, what: str = "look file") -> object:
    """Parse a JSON file; PerseError (one line) if it is missing, unreadable, huge or not JSON."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LOOK_FILE_BYTES:
            raise PerseError(f"{what} {path} is {path.stat().st_size >> 20} MB, too large to be one")
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise PerseError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise PerseError(f"{what} {path} is a folder; choose a .json file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PerseError(f"cannot read {what} {path}: {str(exc).splitlines()[0][:120]}") from None


def look_from_data(data: object, source: str, code_shapes: dict[str, tuple[int, ...]] | None = None) -> Look:
    """A look from parsed JSON ``{category: [numbers]}``. code_shapes ({category: (D,)}): the avatar's
    categories and code lengths; a look with another category or length is refused."""
    if not isinstance(data, dict) or not data:
        raise PerseError(f"{source} is not a look: expected a JSON object {{category: [numbers]}}")
    codes = {}
    for category, code in data.items():
        shape = None if code_shapes is None or category not in code_shapes else tuple(code_shapes[category])
        if code_shapes is not None and shape is None:
            raise PerseError(f"{source} has a category this avatar lacks: {category} "
                             f"(it has {', '.join(sorted(code_shapes))}); the look was made for another avatar")
        problem = number_array_problem(f"the {category} code", code, shape or (-1,))
        if problem:
            raise PerseError(f"{source}: {problem}; the look was made for another avatar or the file is damaged")
        codes[str(category)] = torch.tensor(code, dtype=torch.float32)
    return Look(codes)


def code_shapes(reference: Look) -> dict[str, tuple[int, ...]]:
    """{category: code shape} of an avatar's reference look (what `look_from_data` checks against)."""
    return {name: tuple(code.shape) for name, code in reference.codes.items()}


def complete(look: Look, reference: Look) -> Look:
    """`look` with the reference's code for every category it does not set."""
    return Look({**reference.codes, **look.codes})


def is_named_looks(data: object) -> bool:
    """Whether parsed JSON is a named-looks file ({name: {category: code}}) rather than one look."""
    return isinstance(data, dict) and bool(data) and all(isinstance(v, dict) for v in data.values())


def read_look(path: str | os.PathLike, reference: Look) -> Look:
    """One look from ``FILE`` (a look, or a named-looks file holding one) or ``FILE:NAME``."""
    path, name = str(path), None
    if ":" in path and not Path(path).exists():
        path, name = path.rsplit(":", 1)
    data = read_json(path)
    if is_named_looks(data):
        if name is None and len(data) != 1:
            raise PerseError(f"{path} holds {len(data)} looks ({', '.join(sorted(data))}); "
                             f"pick one with {path}:NAME")
        name = name or next(iter(data))
        if name not in data:
            raise PerseError(f"no look named '{name}' in {path}; it has {', '.join(sorted(data))}")
        data = data[name]
    return complete(look_from_data(data, str(path), code_shapes(reference)), reference)


def read_named_looks(path: str | os.PathLike, reference: Look) -> dict[str, Look]:
    """Every look of a named-looks file, completed with the reference; refused if any does not fit."""
    data = read_json(path, "looks file")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PerseError(f"{path} is not a looks file: expected a JSON object {{name: {{category: [numbers]}}}}")
    shapes = code_shapes(reference)
    return {str(name): complete(look_from_data(codes, f"look '{name}' in {path}", shapes), reference)
            for name, codes in data.items()}


def write_named_looks(looks: dict[str, Look], path: str | os.PathLike) -> None:
    """Named looks as JSON {name: {category: code}}, written atomically."""
    atomic_write_text(path, json.dumps({n: look.to_dict() for n, look in looks.items()}, indent=1))
