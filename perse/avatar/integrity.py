"""Integrity of `.perse` files: the payload checksum, the header's schema and the tensors' consistency.

A damaged or hand-edited file must be refused with one line that names the file and what is wrong,
never crash later inside rendering or training. The checks, in the order `perse.avatar.io` runs them:

1. `check_header`: every header field has the type and range the format promises.
2. the checksum: the header's ``checksum`` ("xxh3-64:<16 hex>") matches the tensors. It covers each
   tensor's name, dtype, shape and bytes in name order, so flipped bytes anywhere in the data or the
   tensor table are caught. XXH3 detects accidental damage (bit flips, truncation, partial copies) at
   memory speed (CRC-32, which the first checksummed files carry and which still verifies, cost ~5 ms
   of an ~8 ms load); it is not a signature against deliberate tampering. Files written before
   checksums still open.
3. `check_tensors` (and `HeadData.validate` for an embedded head): every tensor the header implies is
   there with the right dtype kind and shape, and every index (a Gaussian's parent triangle, the head's
   faces and landmark embedding) is in range of the head model.
4. `PayloadCheck` also refuses NaN and infinite values in any tensor; it runs 2 and this scan on a
   worker thread while 3 and the unpacking run.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import torch

from perse.checks import all_finite, index_problem, is_int, is_number, is_str_list, number_array_problem
from perse.errors import PerseError

CHECKSUM_ALGORITHM = "xxh3-64"                              # what new files carry
CHECKSUM_DIGITS = {"xxh3-64": 16, "crc32": 8}                # every algorithm a file may carry
MAX_DIM = 1 << 16  # field_config sizes beyond this are not an avatar a person made
MAX_GAUSSIANS = 50_000_000


def _refuse(path: Path, problem: str) -> PerseError:
    return PerseError(f"{path} is damaged or not a valid .perse file: {problem}; re-create or re-download it")


# -- checksum ------------------------------------------------------------------------------------------

class _Crc32:
    """zlib's CRC-32 behind the same update/intdigest interface as xxhash's hashers."""

    def __init__(self):
        self.value = 0

    def update(self, data) -> None:
        self.value = zlib.crc32(data, self.value)

    def intdigest(self) -> int:
        return self.value


def _hasher(algorithm: str):
    if algorithm == "crc32":
        return _Crc32()
    import xxhash

    return xxhash.xxh3_64()


def payload_checksum(tensors: dict[str, torch.Tensor], algorithm: str = CHECKSUM_ALGORITHM) -> str:
    """"<algorithm>:<hex digits>" over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = _hasher(algorithm)
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{str(t.dtype)}|{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return f"{algorithm}:{h.intdigest():0{CHECKSUM_DIGITS[algorithm]}x}"


def checksum_algorithm(checksum: str) -> str:
    """The algorithm named by a stored checksum ("xxh3-64:..." -> "xxh3-64")."""
    return checksum.split(":", 1)[0]


class PayloadCheck:
    """The checks that read every byte: the payload checksum and the finite-values scan.

    By default they run on a worker thread while the caller checks shapes and indices and unpacks the
    avatar (zlib and numpy release the GIL, so on two cores they cost little wall time). `verify()`
    waits for them and raises the first problem as a PerseError: a checksum mismatch before any
    non-finite value, since damage explains the rest.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict, path: Path, background: bool = True):
        self.stored, self.path = meta.get("checksum"), path
        self._actual: str | None = None
        self._non_finite: str | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, args=(tensors,), name="perse-payload-check",
                                            daemon=True)
            self._thread.start()
        else:
            self._run(tensors)

    def _run(self, tensors: dict[str, torch.Tensor]) -> None:
        try:
            if self.stored is not None:
                self._actual = payload_checksum(tensors, checksum_algorithm(self.stored))
            self._non_finite = next((name for name in sorted(tensors) if not all_finite(tensors[name])), None)
        except BaseException as exc:  # noqa: BLE001 - re-raised by verify() on the caller's thread
            self._error = exc

    def verify(self) -> bool:
        """True if a checksum was verified, False for an older file without one; PerseError otherwise."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self.stored is not None and self._actual != self.stored:
            raise _refuse(self.path, f"checksum mismatch (header {self.stored}, data {self._actual}): the "
                                     "file was damaged after it was written")
        if self._non_finite is not None:
            raise _refuse(self.path, f"tensor {self._non_finite} holds NaN or infinite values")
        return self.stored is not None


# -- header --------------------------------------------------------------------------------------------

def check_header(meta: object, path: Path) -> dict:
    """Refuse header fields of the wrong type or range; returns `meta` (a dict) when all is well."""
    if not isinstance(meta, dict):
        raise _refuse(path, f"the header is a JSON {type(meta).__name__}, not an object")
    problem = (_head_problem(meta.get("head")) or _categories_problem(meta.get("categories"))
               or _field_config_problem(meta.get("field_config")) or _scalars_problem(meta)
               or _reference_view_problem(meta.get("reference_view")))
    if problem:
        raise _refuse(path, problem)
    return meta


def _scalars_problem(meta: dict) -> str | None:
    n = meta.get("num_gaussians")
    if not is_int(n) or not 1 <= n <= MAX_GAUSSIANS:
        return f"num_gaussians is {n!r}, expected a whole number from 1 to {MAX_GAUSSIANS}"
    if not isinstance(meta.get("training", {}), dict):
        return "training is not a JSON object"
    if not isinstance(meta.get("created", ""), str):
        return "created is not a string"
    checksum = meta.get("checksum")
    if checksum is not None and not _is_checksum(checksum):
        return f"checksum is {checksum!r}, expected '{CHECKSUM_ALGORITHM}:<{CHECKSUM_DIGITS[CHECKSUM_ALGORITHM]} hex digits>'"
    return None


def _is_checksum(value: object) -> bool:
    """Whether a header's checksum field reads "<known algorithm>:<its number of hex digits>"."""
    if not isinstance(value, str) or ":" not in value:
        return False
    algorithm, digits = value.split(":", 1)
    return (len(digits) == CHECKSUM_DIGITS.get(algorithm, -1)
            and all(c in "0123456789abcdef" for c in digits))


def _head_problem(head: object) -> str | None:
    if not isinstance(head, dict):
        return "head is missing or not a JSON object"
    if not isinstance(head.get("kind"), str) or not isinstance(head.get("embedded"), bool):
        return "head.kind must be a string and head.embedded true or false"
    for key in ("name", "sha256"):
        if head.get(key) is not None and not isinstance(head[key], str):
            return f"head.{key} is {head[key]!r}, expected a string"
    if not isinstance(head.get("meta", {}), dict):
        return "head.meta is not a JSON object"
    return None


def _categories_problem(categories: object) -> str | None:
    if not isinstance(categories, list):
        return "categories is missing or not a list"
    names = set()
    for i, c in enumerate(categories):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            return f"categories[{i}] has no name"
        if c["name"] in names:
            return f"category {c['name']!r} appears twice"
        names.add(c["name"])
        variants = c.get("variants")
        if not is_str_list(variants, non_empty=True) or len(set(variants)) != len(variants):
            return f"category {c['name']!r} has no list of distinct variant names"
        if c.get("reference") not in variants or (c.get("none") is not None and c["none"] not in variants):
            return f"category {c['name']!r}: reference/none is not one of its variants"
        if not is_str_list(c.get("regions", [])):
            return f"category {c['name']!r}: regions is not a list of names"
    return None


def _field_config_problem(cfg: object) -> str | None:
    if not isinstance(cfg, dict):
        return "field_config is missing or not a JSON object"
    for key in ("code_dim", "feature_dim", "hidden_dim"):
        if key in cfg and (not is_int(cfg[key]) or not 1 <= cfg[key] <= MAX_DIM):
            return f"field_config.{key} is {cfg[key]!r}, expected a whole number from 1 to {MAX_DIM}"
    unknown = set(cfg) - {"code_dim", "feature_dim", "hidden_dim"}
    return f"field_config has unknown keys {sorted(unknown)}" if unknown else None


def _reference_view_problem(ref: object) -> str | None:
    """None, or {camera: None | {K 3x3, world_to_cam 4x4, width, height, near, far}, params: {...}}."""
    if ref is None:
        return None
    if not isinstance(ref, dict):
        return f"reference_view is {type(ref).__name__}, expected a JSON object"
    camera = ref.get("camera")
    if camera is not None:
        if not isinstance(camera, dict):
            return "reference_view.camera is not a JSON object"
        problem = (number_array_problem("reference_view.camera.K", camera.get("K"), (3, 3))
                   or number_array_problem("reference_view.camera.world_to_cam", camera.get("world_to_cam"), (4, 4)))
        if problem:
            return problem
        for key in ("width", "height"):
            if not is_int(camera.get(key)) or not 1 <= camera[key] <= 1 << 15:
                return f"reference_view.camera.{key} is {camera.get(key)!r}, expected a size in pixels"
        for key in ("near", "far"):
            if key in camera and (not is_number(camera[key]) or camera[key] <= 0):
                return f"reference_view.camera.{key} is {camera[key]!r}, expected a positive number"
    params = ref.get("params", {})
    if not isinstance(params, dict):
        return "reference_view.params is not a JSON object"
    from perse.head.model import RENAMED_FIELDS, HeadParams

    known = set(HeadParams.__dataclass_fields__) | set(RENAMED_FIELDS)
    for key, value in params.items():
        if key not in known:
            return f"reference_view.params has an unknown field {key!r}"
        problem = number_array_problem(f"reference_view.params.{key}", value, (1, -1))
        if problem:
            return problem
    return None


# -- tensors -------------------------------------------------------------------------------------------

def expected_avatar_shapes(meta: dict, num_shape: int) -> dict[str, tuple[int, ...]]:
    """The shape of every avatar tensor (gaussians/*, parent, identity, latent/*) the header implies."""
    from perse.avatar.field import FieldConfig
    from perse.avatar.model import GAUSSIAN_FIELDS

    cfg = FieldConfig(**meta["field_config"])
    N, C = meta["num_gaussians"], len(meta["categories"])
    widths = {"position": 3, "quat": 4, "log_scale": 3, "opacity_logit": None, "color_logit": 3,
              "feature": cfg.feature_dim, "gate_logit": C}
    shapes = {f"gaussians/{name}": (N,) if widths[name] is None else (N, widths[name]) for name in GAUSSIAN_FIELDS}
    shapes["parent"] = (N,)
    shapes["identity"] = (num_shape,)
    for c in meta["categories"]:
        shapes[f"latent/{c['name']}"] = (len(c["variants"]), cfg.code_dim)
    return shapes


def check_tensors(tensors: dict[str, torch.Tensor], meta: dict, path: Path, num_faces: int,
                  num_shape: int) -> None:
    """Every avatar tensor present, of the header's shape and dtype kind; every parent a face of the
    head. (Finite values are `PayloadCheck`'s.)"""
    for name, shape in expected_avatar_shapes(meta, num_shape).items():
        t = tensors.get(name)
        if t is None:
            raise _refuse(path, f"tensor {name} is missing")
        if tuple(t.shape) != shape:
            raise _refuse(path, f"tensor {name} has shape {tuple(t.shape)}, the header implies {shape}")
        if name == "parent":
            problem = index_problem("tensor parent (each Gaussian's triangle)", t, num_faces)
            if problem:
                raise _refuse(path, problem)
        elif not t.is_floating_point():
            raise _refuse(path, f"tensor {name} has dtype {t.dtype}, expected floating point")


def check_field_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """The attribute field's saved weights match the network the header describes, name for name."""
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise _refuse(path, f"attribute field weights {'missing ' + ', '.join(missing) if missing else ''}"
                            f"{'; unexpected ' + ', '.join(extra) if extra else ''}".strip())
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise _refuse(path, f"tensor field/{key} has shape {tuple(value.shape)}, the header implies "
                                f"{tuple(expected[key].shape)}")
