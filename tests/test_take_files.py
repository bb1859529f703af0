"""Take files (.npz) that are damaged or lie are refused in one line, never loaded half-way."""

import io
import zipfile

import numpy as np
import pytest

from perse.errors import PerseError
from perse.motion import ParamLayout, Take

NAMES = ["jawOpen", "mouthSmileLeft"]


def _arrays(frames: int = 4) -> dict:
    return {"timestamps": np.arange(frames) / 30.0, "params": np.zeros((frames, ParamLayout(2).size), np.float32),
            "expression_names": np.array(NAMES), "head_kind": np.array("builtin"), "format": np.array("perse-take-1")}


def _write(path, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_saved_take_loads(tmp_path):
    take = Take.load(_write(tmp_path / "t.npz", _arrays()))
    assert take.num_frames == 4 and take.expression_names == NAMES


@pytest.mark.parametrize("change, message", [
    ({"format": np.array("something else")}, "is not a PERSE take"),
    ({"params": np.zeros((4, 3), np.float32)}, r"params have shape \(4, 3\)"),
    ({"params": np.full((4, ParamLayout(2).size), np.nan, np.float32)}, "non-finite"),
    ({"timestamps": np.array([0.0, 0.2, 0.1, 0.3])}, "out of order"),
    ({"timestamps": np.array(["a", "b", "c", "d"])}, "timestamps have shape"),
    ({"expression_names": np.array([1, 2])}, "expression_names is not a list"),
    ({"head_kind": np.array(3)}, "head_kind is not a string"),
    ({"timestamps": np.zeros(0), "params": np.zeros((0, ParamLayout(2).size))}, "expected at least one"),
])
def test_bad_contents_are_refused(tmp_path, change, message):
    path = _write(tmp_path / "t.npz", {**_arrays(), **change})
    with pytest.raises(PerseError, match=message) as info:
        Take.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_pickles_missing_keys_and_huge_claimed_lengths_are_refused(tmp_path):
    arrays = _arrays()
    arrays["params"] = np.array([object()], dtype=object)
    with pytest.raises(PerseError, match="holds Python objects"):
        Take.load(_write(tmp_path / "pickle.npz", arrays))
    arrays = _arrays()
    del arrays["head_kind"]
    with pytest.raises(PerseError, match="it lacks head_kind"):
        Take.load(_write(tmp_path / "missing.npz", arrays))
    # a .npy header claiming 10^12 frames in a member of a few hundred bytes: refused before allocating
    good = _write(tmp_path / "good.npz", _arrays())
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(lying, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "timestamps.npy":
                assert b"'shape': (4,)" in data
                data = data.replace(b"'shape': (4,)", b"'shape': (10" + b"0" * 11 + b",)")
            dst.writestr(info.filename, data)
    with pytest.raises(PerseError, match="claims"):
        Take.load(lying)
    for junk in (b"", b"PK\x03\x04garbage", b"not a zip at all"):
        (tmp_path / "junk.npz").write_bytes(junk)
        with pytest.raises(PerseError, match="cannot read take"):
            Take.load(tmp_path / "junk.npz")
