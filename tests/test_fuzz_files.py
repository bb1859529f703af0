"""Seeded fuzzing of the files a user can open: mutated .perse avatars, takes and looks files.

Every mutation must end in a PerseError (a one-line refusal) or load correctly and be usable; any other
exception is a crash the user would see as a traceback. Mutations: truncation, byte flips in the header
and the data, huge claimed lengths, header fields of the wrong type, out-of-range indices, NaN/inf.
"""

import io
import json
import random
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from perse.avatar import Avatar, load_avatar, save_avatar
from perse.avatar.latent import Look
from perse.errors import PerseError
from perse.looks import read_named_looks
from perse.motion import ParamLayout, Take
from tiny_models import tiny_categories, tiny_head

SEED = 20261201
ODD_VALUES = ["abc", -5, 0, None, [], {}, [1, 2], {"x": 1}, True, 1e308, -1, 2 ** 63, "", [[0.0] * 3] * 3]


@pytest.fixture(scope="module")
def avatar_files(tmp_path_factory):
    """A tiny avatar saved with a checksum, and the same without one (as older files are)."""
    folder = tmp_path_factory.mktemp("fuzz")
    avatar = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=200, seed=3).eval()
    avatar.meta["reference_view"] = {"camera": {"K": [[300.0, 0, 64], [0, 300.0, 64], [0, 0, 1]],
                                                "world_to_cam": np.eye(4).tolist(), "width": 128, "height": 128},
                                     "params": {"jaw_rot": [[0.1, 0.0, 0.0]]}}
    with_sum = save_avatar(avatar, folder / "with.perse")
    tensors = load_tensors(with_sum.read_bytes())
    header = _header(with_sum.read_bytes())
    meta = json.loads(header["__metadata__"]["perse"])
    del meta["checksum"]
    without = folder / "without.perse"
    without.write_bytes(save_tensors(tensors, metadata={"perse": json.dumps(meta)}))
    return folder, with_sum.read_bytes(), without.read_bytes()


def _header(data: bytes) -> dict:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])


def _flip(data: bytes, rng: random.Random, start: int, end: int) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(start, end)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _mutate_perse(data: bytes, rng: random.Random) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    kind = rng.choice(["truncate", "flip_header", "flip_data", "huge_length", "field_type", "index", "non_finite",
                       "tensor_shape", "garbage"])
    if kind == "truncate":
        return data[:rng.randrange(0, len(data))]
    if kind == "flip_header":
        return _flip(data, rng, 0, 8 + n)
    if kind == "flip_data":
        return _flip(data, rng, 8 + n, len(data))
    if kind == "huge_length":
        return struct.pack("<Q", rng.choice([2 ** 63, 2 ** 40, len(data), n + rng.randint(1, 64)])) + data[8:]
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 256)))
    tensors = load_tensors(data)
    meta = json.loads(_header(data)["__metadata__"]["perse"])
    if kind == "field_type":
        target = meta
        path = rng.choice([["format_version"], ["num_gaussians"], ["reference_view"], ["reference_view", "camera"],
                           ["reference_view", "params"], ["categories"], ["field_config"], ["field_config", "code_dim"],
                           ["head"], ["head", "embedded"], ["head", "meta"], ["checksum"], ["training"],
                           ["categories", 0], ["categories", 0, "variants"]])
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = rng.choice(ODD_VALUES)
    elif kind == "tensor_shape":
        name = rng.choice(sorted(tensors))
        t = tensors[name]
        tensors[name] = t[: max(0, t.shape[0] - rng.randint(1, 3))] if t.ndim else t.reshape(1)
    else:  # one element of an index tensor out of range, or one float NaN / infinite / huge
        names = sorted(k for k, t in tensors.items() if t.numel() and t.is_floating_point() == (kind == "non_finite"))
        name = rng.choice(names)
        flat = tensors[name].clone().reshape(-1)
        i = rng.randrange(flat.numel())
        if kind == "non_finite":
            flat[i] = rng.choice([float("nan"), float("inf"), float("-inf"), 1e30, -1e30])
        else:
            flat[i] = rng.choice([-1, -2, 10 ** 6, 2 ** 40, -(2 ** 40), int(flat.max()) + 1])
        tensors[name] = flat.reshape(tensors[name].shape)
    return save_tensors(tensors, metadata={"perse": json.dumps(meta)})


def _use_avatar(avatar) -> None:
    """What opening an avatar leads to: its reference state and world Gaussians."""
    with torch.no_grad():
        avatar.gaussians(avatar.reference_state())


def _outcome(load, use, path) -> str:
    try:
        loaded = load(path)
    except PerseError as exc:
        assert "\n" not in str(exc), str(exc)
        return "refused"
    use(loaded)
    return "loaded"


def test_mutated_avatars_are_refused_or_load(avatar_files):
    folder, with_sum, without = avatar_files
    rng = random.Random(SEED)
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(300):
        source = with_sum if i % 2 == 0 else without
        path = folder / f"m{i % 4}.perse"
        path.write_bytes(_mutate_perse(source, rng))
        outcomes[_outcome(load_avatar, _use_avatar, path)] += 1
    assert outcomes["refused"] > 150 and sum(outcomes.values()) == 300, outcomes


def _take_bytes(frames: int = 6) -> bytes:
    names = ["jawOpen", "mouthSmileLeft", "eyeBlinkLeft"]
    buffer = io.BytesIO()
    np.savez(buffer, timestamps=np.arange(frames) / 30.0, params=np.zeros((frames, ParamLayout(3).size), np.float32),
             expression_names=np.array(names), head_kind=np.array("builtin"), format=np.array("perse-take-1"))
    return buffer.getvalue()


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "flip_many", "garbage", "shape"])
    if kind == "truncate":
        return data[:rng.randrange(0, len(data))]
    if kind == "flip":
        return _flip(data, rng, 0, len(data))
    if kind == "flip_many":
        out = data
        for _ in range(rng.randint(2, 20)):
            out = _flip(out, rng, 0, len(out))
        return out
    if kind == "shape":  # a .npy header claiming far more data than there is
        return data.replace(b"'shape': (6,", b"'shape': (9" + b"9" * rng.randint(1, 15) + b",", 1)
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 512)))


def test_mutated_takes_are_refused_or_load(tmp_path):
    rng = random.Random(SEED + 1)
    good = _take_bytes()
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(200):
        path = tmp_path / "take.npz"
        path.write_bytes(_mutate_bytes(good, rng))
        outcomes[_outcome(Take.load, lambda t: (t.vector_at(0.1), t.resample(30.0)), path)] += 1
    assert outcomes["refused"] > 50 and sum(outcomes.values()) == 200, outcomes


def test_mutated_looks_files_are_refused_or_load(tmp_path):
    rng = random.Random(SEED + 2)
    reference = Look({"hat": torch.zeros(8), "beard": torch.zeros(8)})
    good = json.dumps({"red hat": {"hat": [0.5] * 8}, "beard": {"beard": [1.0] * 8, "hat": [0.1] * 8}}).encode()
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(200):
        if i % 3 == 0:  # a structural change: a value of the wrong type somewhere
            data = json.loads(good)
            look = data[rng.choice(sorted(data))]
            look[rng.choice(sorted(look))] = rng.choice(ODD_VALUES + [[float("nan")] * 8, [1e400] * 8, [0.0] * 9])
            text = json.dumps(data).encode()
        else:
            text = _mutate_bytes(good, rng)
        path = tmp_path / "looks.json"
        path.write_bytes(text)
        outcomes[_outcome(lambda p: read_named_looks(p, reference), lambda looks: [l.key() for l in looks.values()],
                          path)] += 1
    assert outcomes["refused"] > 50 and sum(outcomes.values()) == 200, outcomes
