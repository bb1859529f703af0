"""`.perse` avatar files: one safetensors file holding every tensor, with JSON metadata in its header.

Tensor names: ``gaussians/<field>``, ``parent``, ``identity``, ``latent/<category>``,
``field/<state-dict key>``, and ``head/<array>`` when the head model is embedded (the built-in head).
An avatar bound to a FLAME file does not embed FLAME (its licence forbids redistribution): it stores the
file's sha256 and is reopened only with that exact file (``--flame``, ``PERSE_FLAME`` or the config).

Header key ``perse`` (JSON): format, format_version, head {kind, name, sha256, embedded, meta},
categories, field_config, num_gaussians, training summary, reference_view, created, checksum.

Opening a file checks it completely before anything uses it (`perse.avatar.integrity`): the header's
types, the payload checksum (files written before checksums open without one), every tensor's shape
against the header, finite values and every index against the head model. Each refusal is a one-line
`PerseError` naming the file and the problem.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from perse.avatar import integrity
from perse.avatar.field import FieldConfig
from perse.categories import Category
from perse.avatar.model import GAUSSIAN_FIELDS, Avatar
from perse.checks import is_int
from perse.errors import PerseError
from perse.head.model import HeadData, HeadModel
from perse.io_utils import atomic_path

FORMAT = "perse-avatar"
FORMAT_VERSION = 1


def pack_avatar(avatar: Avatar, training: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """An avatar as (tensors by name, JSON-able header): the content of a `.perse` file."""
    tensors: dict[str, torch.Tensor] = {}
    for name in GAUSSIAN_FIELDS:
        tensors[f"gaussians/{name}"] = avatar.gaussians_params[name].detach().cpu()
    tensors["parent"] = avatar.parent.cpu()
    tensors["identity"] = avatar.identity.cpu()
    for name, codes in avatar.latent.codes.items():
        tensors[f"latent/{name}"] = codes.detach().cpu()
    for key, value in avatar.field.state_dict().items():
        tensors[f"field/{key}"] = value.detach().cpu()

    head = avatar.head
    embed = head.kind != "flame"
    if embed:
        for key, value in head.data().tensors().items():
            tensors[f"head/{key}"] = value
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "head": {"kind": head.kind, "name": head.meta.get("name"), "sha256": head.meta.get("sha256"),
                 "embedded": embed, "meta": head.meta},
        "categories": [c.to_dict() for c in avatar.categories],
        "field_config": asdict(avatar.cfg),
        "num_gaussians": avatar.num_gaussians,
        "training": training if training is not None else avatar.meta.get("training", {}),
        "reference_view": avatar.meta.get("reference_view"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return {k: v.contiguous() for k, v in tensors.items()}, meta


def save_avatar(avatar: Avatar, path: str | os.PathLike, training: dict | None = None) -> Path:
    """Write `avatar` to `path` atomically, with the payload checksum in the header. `training`
    (JSON-able) replaces the stored training summary."""
    from safetensors.torch import save_file

    tensors, meta = pack_avatar(avatar, training)
    meta["checksum"] = integrity.payload_checksum(tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"perse": json.dumps(meta)})
    return Path(path)


def read_avatar_meta(path: str | os.PathLike) -> dict:
    """The JSON header of a `.perse` file (cheap: reads no tensors)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise PerseError(f"avatar file not found: {path}")
    if path.is_dir():
        raise PerseError(f"{path} is a folder, not a .perse avatar file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get("perse")
    except Exception as exc:  # safetensors raises several error types for corrupt files
        raise PerseError(f"{path} is not a readable .perse file ({_first_line(exc)}); "
                         f"re-create or re-download it") from None
    if header is None:
        raise PerseError(f"{path} is a safetensors file but not a .perse avatar (no 'perse' header)")
    try:
        meta = json.loads(header)
    except json.JSONDecodeError:
        raise PerseError(f"{path} has a corrupt .perse header; re-create the avatar") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise PerseError(f"{path} is not a .perse avatar (format {found!r})")
    version = meta.get("format_version")
    if not is_int(version) or version < 1:
        raise PerseError(f"{path} has a corrupt .perse header: format_version is {version!r}, expected a "
                         f"whole number; re-create the avatar")
    if version > FORMAT_VERSION:
        raise PerseError(f"{path} uses .perse format version {version}, newer than this "
                         f"PERSE Studio supports ({FORMAT_VERSION}); upgrade perse-studio")
    return integrity.check_header(meta, path)


def checksum_status(meta: dict) -> str:
    """How a file's payload is protected, for `perse info`: "xxh3-64:..." or "no checksum"."""
    if meta.get("checksum"):
        return f"{meta['checksum']} (verified when the file is opened)"
    return "no checksum (written before checksums; saving it again adds one)"


def load_avatar(path: str | os.PathLike, flame: str | None = None, flame_embedding: str | None = None,
                device: str | torch.device = "cpu") -> Avatar:
    """Open a `.perse` file. FLAME-based avatars need the same FLAME file (`flame`, PERSE_FLAME or config)."""
    from safetensors import safe_open

    path = Path(path)
    meta = read_avatar_meta(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise PerseError(f"{path} is truncated or corrupt ({_first_line(exc)}); re-create it") from None
    payload = integrity.PayloadCheck(tensors, meta, path)  # checksum + finite values, while unpacking
    try:
        avatar = unpack_avatar(tensors, meta, path, flame, flame_embedding, payload_checked=True)
    except PerseError:
        payload.verify()  # damaged data is reported as damage, not as whatever it broke
        raise
    payload.verify()
    if torch.device(device).type != "cpu":  # loaded on the CPU: moving there again walks every module
        avatar = avatar.to(device)
    return avatar.eval()


def unpack_avatar(tensors: dict[str, torch.Tensor], meta: dict, path: Path, flame: str | None = None,
                  flame_embedding: str | None = None, payload_checked: bool = False) -> Avatar:
    """Inverse of `pack_avatar`, after checking the tensors against the header and the head model;
    `path` only names the source in error messages. `payload_checked`: the caller runs the
    `integrity.PayloadCheck` (checksum, finite values) itself."""
    if not payload_checked:
        integrity.PayloadCheck(tensors, meta, path, background=False).verify()
    try:
        head = _head_for(meta["head"], tensors, path, flame, flame_embedding)
        integrity.check_tensors(tensors, meta, path, int(head.faces.shape[0]), head.num_shape)
        categories = [Category.from_dict(c) for c in meta["categories"]]
        cfg = FieldConfig(**meta["field_config"])
        gaussians = {name: tensors[f"gaussians/{name}"] for name in GAUSSIAN_FIELDS}
        avatar = Avatar(head, categories, tensors["parent"], gaussians, cfg, tensors["identity"],
                        meta={"training": meta.get("training", {}), "reference_view": meta.get("reference_view"),
                              "source": str(path)})
        for name in avatar.latent.codes:
            avatar.latent.codes[name].data.copy_(tensors[f"latent/{name}"])
        field_state = {k[len("field/"):]: v for k, v in tensors.items() if k.startswith("field/")}
        integrity.check_field_state(field_state, avatar.field.state_dict(), path)
        avatar.field.load_state_dict(field_state)
    except PerseError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise PerseError(f"{path} is an incomplete or inconsistent .perse file ({_first_line(exc)}); "
                         f"re-create it") from None
    return avatar


def _head_for(head_meta: dict, tensors: dict, path: Path, flame: str | None,
              flame_embedding: str | None) -> HeadModel:
    if head_meta.get("embedded"):
        arrays = {k[len("head/"):]: v for k, v in tensors.items() if k.startswith("head/")}
        try:
            data = HeadData.from_tensors(arrays, head_meta.get("meta", {})).validate("embedded head", finite=False)
        except (TypeError, ValueError) as exc:  # TypeError: a required array is missing
            raise PerseError(f"{path} is damaged or not a valid .perse file: {_first_line(exc)}; "
                             "re-create or re-download it") from None
        return HeadModel(data)
    from perse.head.flame import load_flame
    from perse.head.registry import resolve_embedding_path, resolve_flame_path

    want = head_meta.get("sha256")
    flame_path = resolve_flame_path(flame)
    if flame_path is None:
        raise PerseError(f"{path.name} was made with {head_meta.get('name') or 'a FLAME model'} "
                         f"(sha256 {str(want)[:12]}…); choose that FLAME file or set PERSE_FLAME to it",
                         setting="flame")
    model = load_flame(flame_path, resolve_embedding_path(flame_embedding))
    if want and model.meta.get("sha256") != want:
        raise PerseError(f"{flame_path} is not the FLAME file {path.name} was made with "
                         f"(sha256 {model.meta.get('sha256', '')[:12]}… vs {str(want)[:12]}…)")
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
