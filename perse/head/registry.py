"""One way to get a head model from what the user asked for: the built-in head or a FLAME file.

Where the FLAME file comes from, highest precedence first:

1. the CLI flag (``--flame FILE``, ``--flame-embedding FILE``),
2. the environment (``PERSE_FLAME``, ``PERSE_FLAME_EMBEDDING``),
3. the config file ``perse.paths.config_dir() / "config.json"`` (keys ``"flame"``, ``"flame_embedding"``;
   relative paths there are relative to the config folder).

Avatars remember which head they were built on (`identify_head`); a FLAME-based avatar is reopened by
finding the FLAME file with the same SHA-256 (`find_flame_for_sha`), since FLAME itself cannot be shipped
inside the avatar file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from perse.errors import PerseError
from perse.head.flame import load_flame, sha256_file
from perse.head.model import HeadModel
from perse.paths import config_dir

ENV_FLAME = "PERSE_FLAME"
ENV_FLAME_EMBEDDING = "PERSE_FLAME_EMBEDDING"
CONFIG_FLAME = "flame"
CONFIG_FLAME_EMBEDDING = "flame_embedding"

BUILTIN_SPECS = ("builtin", "built-in")
FLAME_SPEC = "flame"  # "use the configured FLAME file"


def config_path() -> Path:
    """The user's config file (may not exist)."""
    return config_dir() / "config.json"


def read_config() -> dict:
    """The user's config as a dict ({} when there is no config file)."""
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PerseError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); fix or delete the file")
    except (OSError, UnicodeDecodeError) as err:
        raise PerseError(f"cannot read config {path} ({err}); fix its permissions or delete it")
    if not isinstance(data, dict):
        raise PerseError(f"{path}: expected a JSON object like {{\"flame\": \"/path/generic_model.pkl\"}}")
    return data


def _resolve(cli_value: str | os.PathLike | None, env_name: str, config_key: str) -> Path | None:
    """First of CLI value, environment variable, config entry that is set; None if none is."""
    if cli_value is not None and str(cli_value) != "":
        return Path(cli_value).expanduser()
    env_value = os.environ.get(env_name)
    if env_value:
        return Path(env_value).expanduser()
    value = read_config().get(config_key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PerseError(f"{config_path()}: \"{config_key}\" must be a file path string, not {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else config_path().parent / path


def resolve_flame_path(cli_value: str | os.PathLike | None = None) -> Path | None:
    """The FLAME file the user configured: CLI flag, then $PERSE_FLAME, then config "flame"; else None.

    The path is not checked for existence here (`load_head_model` does, with a one-line error).
    """
    return _resolve(cli_value, ENV_FLAME, CONFIG_FLAME)


def resolve_embedding_path(cli_value: str | os.PathLike | None = None) -> Path | None:
    """The landmark embedding: CLI flag, then $PERSE_FLAME_EMBEDDING, then config "flame_embedding"."""
    return _resolve(cli_value, ENV_FLAME_EMBEDDING, CONFIG_FLAME_EMBEDDING)


def load_head_model(spec: str | os.PathLike | None = None, embedding: str | os.PathLike | None = None) -> HeadModel:
    """The head model named by `spec`.

    Args:
        spec: None or "builtin" for the built-in head; "flame" for the configured FLAME file
            (`resolve_flame_path`); anything else is a path to a FLAME file.
        embedding: landmark embedding for a FLAME model; None means the configured one
            (`resolve_embedding_path`), which may be absent (the model then has no landmarks).
    """
    if spec is None or str(spec).lower() in BUILTIN_SPECS:
        from perse.head.builtin_asset import load_builtin_head

        return load_builtin_head()
    if str(spec).lower() == FLAME_SPEC:
        path = resolve_flame_path(None)
        if path is None:
            raise PerseError(f"no FLAME file configured; set {ENV_FLAME} or choose the FLAME file", setting="flame")
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise PerseError(f"FLAME file not found: {path}; set {ENV_FLAME} or choose the FLAME file", setting="flame")
    embedding_path = resolve_embedding_path(embedding)
    if embedding_path is not None and not embedding_path.is_file():
        raise PerseError(f"landmark embedding not found: {embedding_path}; "
                         f"set {ENV_FLAME_EMBEDDING} or choose the embedding file", setting="flame_embedding")
    return load_flame(path, embedding_path)


def _content_sha256(model: HeadModel) -> str:
    """SHA-256 over the model's buffers (name, dtype, shape, bytes), for heads with no source file."""
    digest = hashlib.sha256()
    for name, buf in sorted(model.named_buffers(), key=lambda item: item[0]):
        t = buf.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def identify_head(model: HeadModel) -> dict:
    """{"kind", "name", "sha256"} saved with an avatar to find its head model again.

    For FLAME, sha256 is the FLAME file's hash; for other heads it is the source hash in meta if there
    is one, else a hash of the model's arrays.
    """
    return {
        "kind": model.meta.get("kind", "unknown"),
        "name": model.meta.get("name", "unnamed head"),
        "sha256": model.meta.get("sha256") or _content_sha256(model),
    }


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    """sha256_file, remembered per (path, size, mtime) so repeated look-ups do not rehash 100 MB."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def find_flame_for_sha(sha256: str, candidates: Iterable[str | os.PathLike | None] | None = None) -> Path | None:
    """The first existing candidate file whose SHA-256 is `sha256`, else None.

    Args:
        sha256: hex digest stored in an avatar (`identify_head(model)["sha256"]`).
        candidates: paths to check (None entries and missing files are skipped); None means the
            configured FLAME file (`resolve_flame_path()`).
    """
    if candidates is None:
        candidates = [resolve_flame_path(None)]
    wanted = sha256.lower()
    for candidate in candidates:
        if candidate is None:
            continue
        path = Path(candidate).expanduser()
        if path.is_file() and _cached_sha256(path) == wanted:
            return path
    return None
