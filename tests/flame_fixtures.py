"""Synthetic files in the exact format of the official FLAME releases, for tests (FLAME cannot be shipped).

`write_synthetic_flame` writes a protocol-2 pickle with the official key names, dtypes and shapes. With
``chumpy_style=True`` it reproduces how the Python 2 originals are laid out on disk:

* arrays wrapped in ``chumpy.ch.Ch`` objects (NEWOBJ of the global ``chumpy.ch.Ch``, then BUILD with the
  instance ``__dict__``, whose ``"x"`` holds the ndarray: what chumpy's ``Ch.__getstate__`` produces),
* ``J_regressor`` as an old-scipy ``scipy.sparse.csc.csc_matrix`` whose state is its ``__dict__``
  (``data``, ``indices``, ``indptr``, ``_shape``, ``format``, ``maxprint``),
* every byte string and str written as Python 2 ``str`` (BINSTRING opcodes), numpy's raw array bytes
  included, so the file only loads with ``encoding="latin1"`` like the originals.

The classes are fakes living in synthetic modules put into ``sys.modules`` only while pickling, so the
pickle references ``chumpy.ch.Ch`` exactly as official files do while chumpy itself is never installed.
With ``chumpy_style=False`` the file is what a Python 3 user gets re-saving FLAME with plain numpy arrays
and a current scipy ``csc_matrix``.

The geometry is a valid skinnable head-sized model: a closed ellipsoidal surface with an open neck,
smooth random shape/expression/pose-corrective directions, skinning weights that sum to one and a sparse
joint regressor whose rows are convex combinations of vertices (joints inside the head).
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import sys
import types
from pathlib import Path
from typing import Iterator

import numpy as np

NUM_VERTICES = 5023
NUM_FACES = 9976
NUM_SHAPE = 300
NUM_EXPRESSION = 100
NUM_JOINTS = 5
NUM_POSEDIRS = 36
NUM_EMBEDDED_LANDMARKS = 105
ROOT_PARENT = np.iinfo(np.uint32).max  # how FLAME's kintree_table stores the root's parent

VERSIONS = {"2020": 0, "2023": 1, "open": 2}  # version -> seed offset, so each version's bytes differ
HEAD_RADII = np.array([0.075, 0.10, 0.09])  # metres, x (ear to ear), y (up), z (front)


# ---------------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------------
def _fibonacci_sphere(n: int) -> np.ndarray:
    """(n, 3) nearly uniform unit vectors."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - y * y)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def _head_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere directions (V, 3) and outward faces (NUM_FACES, 3) with an open neck."""
    from scipy.spatial import ConvexHull

    dirs = _fibonacci_sphere(NUM_VERTICES)
    faces = ConvexHull(dirs).simplices.astype(np.int64)  # 2V - 4 = 10042 triangles
    a, b, c = (dirs[faces[:, k]] for k in range(3))
    inward = np.einsum("fc,fc->f", np.cross(b - a, c - a), a + b + c) < 0
    faces[inward] = faces[inward][:, [0, 2, 1]]
    # Open the neck: drop the lowest triangles until FLAME's face count is reached.
    order = np.argsort(dirs[faces].mean(axis=1)[:, 1])
    keep = np.sort(order[len(faces) - NUM_FACES:])
    return dirs, faces[keep]


def _smooth_features(p: np.ndarray) -> np.ndarray:
    """(V, 12) low-frequency functions of normalised positions p (V, 3): smooth random directions."""
    x, y, z = p.T
    return np.stack([x, y, z, x * x, y * y, z * z, x * y, y * z, x * z,
                     np.sin(np.pi * x), np.sin(np.pi * y), np.cos(np.pi * z)], axis=1)


def _random_directions(rng: np.random.Generator, feats: np.ndarray, count: int, scale: float,
                       mask: np.ndarray | None = None) -> np.ndarray:
    """(V, 3, count) smooth displacement directions, optionally faded by a per-vertex mask (V,).

    Magnitudes decay like a PCA basis's (direction k scaled by 1 / sqrt(1 + k)) so that unit-variance
    coefficients give plausible heads.
    """
    decay = 1.0 / np.sqrt(1.0 + np.arange(count))
    coeffs = rng.normal(size=(count, 3, feats.shape[1])) * (scale * decay / np.sqrt(feats.shape[1]))[:, None, None]
    dirs = np.einsum("vf,kcf->vck", feats, coeffs)
    return dirs if mask is None else dirs * mask[:, None, None]


def _regressor_rows(rng: np.random.Generator, v: np.ndarray) -> np.ndarray:
    """(5, V) dense joint regressor: each row a random convex combination of a vertex patch."""
    x, y, z = v.T
    patches = [
        np.abs(y + 0.085) < 0.008,                        # global: ring at the bottom of the neck
        np.abs(y + 0.045) < 0.008,                        # neck: ring higher up
        np.abs(y + 0.015) < 0.006,                        # jaw: ring at mouth height
        np.linalg.norm(v - [0.032, 0.03, 0.08], axis=1) < 0.02,   # left eye patch (+x is the left)
        np.linalg.norm(v - [-0.032, 0.03, 0.08], axis=1) < 0.02,  # right eye patch
    ]
    rows = np.zeros((NUM_JOINTS, len(v)))
    for j, patch in enumerate(patches):
        idx = np.flatnonzero(patch)
        assert len(idx) >= 8, f"joint {j} patch too small"
        w = rng.uniform(0.5, 1.5, size=len(idx))
        rows[j, idx] = w / w.sum()
    return rows


def _skinning_weights(v: np.ndarray) -> np.ndarray:
    """(V, 5) smooth weights summing to one: lower neck -> global, cranium -> neck, chin -> jaw, eyes."""
    anchors = np.array([[0.0, -0.20, 0.0], [0.0, 0.02, -0.01], [0.0, -0.07, 0.07],
                        [0.032, 0.03, 0.08], [-0.032, 0.03, 0.08]])
    sigma = np.array([0.09, 0.07, 0.05, 0.012, 0.012])
    logits = -((v[:, None, :] - anchors[None]) ** 2).sum(-1) / (2 * sigma**2)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    return w / w.sum(axis=1, keepdims=True)


def make_synthetic_flame(version: str = "2020", seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a synthetic FLAME model under the official keys (J_regressor dense here).

    v_template (5023, 3) f8, f (9976, 3) u4, shapedirs (5023, 3, 400) f8, posedirs (5023, 3, 36) f8,
    J_regressor (5, 5023) f8, kintree_table (2, 5) i8 (root parent 2**32 - 1), weights (5023, 5) f8,
    J (5, 3) f8.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown FLAME version {version!r}; expected one of {sorted(VERSIONS)}")
    rng = np.random.default_rng(1000 * seed + VERSIONS[version])
    unit, faces = _head_mesh()
    bump = 1.0 + 0.03 * np.sin(3 * unit[:, 0]) * np.cos(2 * unit[:, 1])
    v_template = unit * HEAD_RADII * bump[:, None]
    feats = _smooth_features(unit)
    lower_face = 1.0 / (1.0 + np.exp(-(unit[:, 2] - 0.2) / 0.15))  # expressions act on the front
    shapedirs = np.concatenate([
        _random_directions(rng, feats, NUM_SHAPE, scale=4e-3),
        _random_directions(rng, feats, NUM_EXPRESSION, scale=3e-3, mask=lower_face),
    ], axis=2)
    posedirs = _random_directions(rng, feats, NUM_POSEDIRS, scale=2e-2)
    j_regressor = _regressor_rows(rng, v_template)
    kintree = np.array([[ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": v_template,
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": j_regressor,
        "kintree_table": kintree,
        "weights": _skinning_weights(v_template),
        "J": j_regressor @ v_template,
    }


# ---------------------------------------------------------------------------------------------------
# Writing pickles the way the Python 2 originals are written
# ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _fake_modules(modules: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put synthetic modules into sys.modules for the duration, then restore what was there."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def _fake_class(module: types.ModuleType, name: str) -> type:
    cls = type(name, (), {"__module__": module.__name__, "__qualname__": name})
    setattr(module, name, cls)
    return cls


def _with_state(cls: type, state: dict) -> object:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


class _Py2Pickler(pickle._Pickler):
    """Writes bytes and latin-1 str as Python 2 `str` (BINSTRING), like pickles made by Python 2."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes | str) -> None:
        if isinstance(obj, str):
            try:
                data = obj.encode("latin1")
            except UnicodeEncodeError:  # Python 2 would have had a `unicode` object here
                return pickle._Pickler.save_str(self, obj)
        else:
            data = obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def _chumpy_style_payload(arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, types.ModuleType]]:
    """The pickled dict (arrays in fake `chumpy.ch.Ch`, sparse J_regressor) and the fake modules."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")
    chumpy.ch = chumpy_ch
    scipy_csc = types.ModuleType("scipy.sparse.csc")
    Ch = _fake_class(chumpy_ch, "Ch")
    csc_matrix = _fake_class(scipy_csc, "csc_matrix")

    def ch(x: np.ndarray) -> object:
        # chumpy's Ch.__getstate__: __dict__ minus the weak-reference caches.
        return _with_state(Ch, {"x": x, "_dirty_vars": {"x"}, "_itr": None, "_make_dense": False,
                                "_make_sparse": False, "_depends_on_deps": {}})

    dense = arrays["J_regressor"]
    col_of, row_of = np.nonzero(dense.T)  # entries in column-major order, as csc stores them
    sparse = _with_state(csc_matrix, {
        "_shape": dense.shape, "maxprint": 50, "format": "csc",
        "data": dense[row_of, col_of].astype(np.float64),
        "indices": row_of.astype(np.int32),
        "indptr": np.concatenate([[0], np.cumsum(np.bincount(col_of, minlength=dense.shape[1]))]).astype(np.int32),
    })
    payload = {
        "v_template": ch(arrays["v_template"]),
        "f": arrays["f"],  # a plain ndarray in the official files
        "shapedirs": ch(arrays["shapedirs"]),
        "posedirs": ch(arrays["posedirs"]),
        "J_regressor": sparse,
        "kintree_table": arrays["kintree_table"],
        "weights": ch(arrays["weights"]),
        "J": ch(arrays["J"]),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    modules = {"chumpy": chumpy, "chumpy.ch": chumpy_ch, "scipy.sparse.csc": scipy_csc}
    return payload, modules


def write_pickle_py2(path: str | Path, obj: object, modules: dict[str, types.ModuleType] | None = None) -> None:
    """Pickle `obj` (protocol 2, Python 2 strings) with the given fake modules importable meanwhile."""
    with _fake_modules(modules or {}), open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def write_synthetic_flame(path: str | Path, version: str = "2020", seed: int = 0,
                          chumpy_style: bool = True) -> dict[str, np.ndarray]:
    """Write a synthetic FLAME model file; returns its arrays (`make_synthetic_flame`) for reference."""
    arrays = make_synthetic_flame(version, seed)
    if chumpy_style:
        payload, modules = _chumpy_style_payload(arrays)
        write_pickle_py2(path, payload, modules)
    else:
        import scipy.sparse

        payload = dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]),
                       bs_style="lbs", bs_type="lrotmin")
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    return arrays


def write_synthetic_embedding(path: str | Path, num_faces: int = NUM_FACES, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a ``mediapipe_landmark_embedding.npz``-format file (105 landmarks); returns its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "lmk_face_idx": rng.choice(num_faces, size=NUM_EMBEDDED_LANDMARKS, replace=False).astype(np.int64),
        "lmk_b_coords": rng.dirichlet(np.ones(3), size=NUM_EMBEDDED_LANDMARKS),
        "landmark_indices": np.sort(rng.choice(478, size=NUM_EMBEDDED_LANDMARKS, replace=False)).astype(np.int64),
    }
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return arrays
