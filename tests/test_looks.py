"""Look files (perse.looks): round trip, completion with the reference look, one-line refusals."""

import json

import pytest
import torch

from perse.avatar.latent import Look
from perse.errors import PerseError
from perse.looks import read_look, read_named_looks, write_named_looks

REFERENCE = Look({"hat": torch.zeros(4), "beard": torch.ones(4)})


def _file(tmp_path, data, name="looks.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_round_trip_and_missing_categories_keep_the_reference(tmp_path):
    path = tmp_path / "looks.json"
    write_named_looks({"a": Look({"hat": torch.arange(4.0)})}, path)
    back = read_named_looks(path, REFERENCE)
    assert torch.equal(back["a"].codes["hat"], torch.arange(4.0))
    assert torch.equal(back["a"].codes["beard"], torch.ones(4))  # not in the file: the reference
    assert torch.equal(read_look(f"{path}:a", REFERENCE).codes["hat"], torch.arange(4.0))
    one = _file(tmp_path, {"hat": [1, 2, 3, 4]}, "one.json")
    assert torch.equal(read_look(one, REFERENCE).codes["hat"], torch.tensor([1.0, 2, 3, 4]))


@pytest.mark.parametrize("data, message", [
    ({"a": {"hat": [1, 2, 3]}}, r"the hat code has shape \(3,\), expected \(4,\)"),
    ({"a": {"hat": [1, 2, "x", 4]}}, "the hat code holds values that are not numbers"),
    ({"a": {"hat": "red"}}, "the hat code is str"),
    ({"a": {"hat": [[1, 2], [3, 4]]}}, "the hat code has shape"),
    ({"a": {"wings": [1, 2, 3, 4]}}, "category this avatar lacks: wings"),
    ({"a": {}}, "is not a look"),
    ([1, 2], "is not a looks file"),
    ({"a": 3}, "is not a looks file"),
    ("{not json", "cannot read looks file"),
    ('{"a": {"hat": [NaN, 0, 0, 0]}}', "holds NaN or infinite values"),
    ('{"a": {"hat": [1e999, 0, 0, 0]}}', "holds NaN or infinite values"),
    ("[" * 100000, "cannot read looks file"),
])
def test_bad_looks_files_are_refused_in_one_line(tmp_path, data, message):
    path = _file(tmp_path, data)
    with pytest.raises(PerseError, match=message) as info:
        read_named_looks(path, REFERENCE)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_look_file_errors(tmp_path):
    with pytest.raises(PerseError, match="look file not found"):
        read_look(tmp_path / "missing.json", REFERENCE)
    two = _file(tmp_path, {"a": {"hat": [0, 0, 0, 0]}, "b": {"hat": [1, 1, 1, 1]}})
    with pytest.raises(PerseError, match=r"holds 2 looks \(a, b\); pick one"):
        read_look(two, REFERENCE)
    with pytest.raises(PerseError, match="no look named 'c'"):
        read_look(f"{two}:c", REFERENCE)
    with pytest.raises(PerseError, match="is a folder"):
        read_look(tmp_path, REFERENCE)
