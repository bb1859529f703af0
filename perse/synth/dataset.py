"""`AttributeDataset`: reads a dataset folder written by `perse.synth.generate_dataset`.

The format is documented in `perse.synth.generator` (and in each dataset's README.md). Frames load
as `Frame` objects with float tensors; an optional in-memory cache keeps decoded frames.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from perse.errors import PerseError
from perse.head.model import HeadParams
from perse.render.camera import Camera
from perse.synth.generator import FORMAT_NAME, FORMAT_VERSION
from perse.synth.variants import Category

_FRAME_KEYS = ("image", "regions", "split", "camera", "params", "variants")


@dataclass
class Frame:
    """One training frame.

    image: (H, W, 3) float32 straight RGB in [0, 1]; alpha: (H, W, 1) float32 coverage;
    regions: (H, W) int64 bitmask (bit c = category c's region visible);
    camera: Camera; params: HeadParams with batch size 1;
    variant_index: {category: index into that category's variants}; split: "train" | "test".
    """

    image: Tensor
    alpha: Tensor
    regions: Tensor
    camera: Camera
    params: HeadParams
    variant_index: dict[str, int]
    split: str
    index: int


class AttributeDataset:
    """A synthetic (or edited) attribute dataset folder.

    Args:
        root: the folder holding dataset.json.
        cache: keep decoded frames in memory after their first load.
    """

    def __init__(self, root: str | os.PathLike, cache: bool = False):
        self.root = Path(root)
        path = self.root / "dataset.json"
        if not path.is_file():
            hint = " (an interrupted generation leaves only a .partial folder: run it again)" \
                if self.root.with_name(self.root.name + ".partial").exists() else ""
            raise PerseError(f"{path} not found: {self.root} is not a PERSE dataset folder{hint}")
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PerseError(f"{path} is corrupt ({exc.__class__.__name__}: {exc}); regenerate the dataset") from None
        self.meta = _validate(meta, path)
        self.categories: list[Category] = [Category.from_dict(c) for c in meta["categories"]]
        self.frames: list[dict] = meta["frames"]
        self.image_size: tuple[int, int] = (int(meta["image_size"][0]), int(meta["image_size"][1]))
        self.head_info: dict = dict(meta.get("head", {}))
        self.generator: dict = dict(meta.get("generator", {}))
        self.cache_enabled = bool(cache)
        self._cache: dict[int, Frame] = {}
        self._by_name = {c.name: c for c in self.categories}

    # -- index -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Frame:
        return self.load_frame(i)

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    def indices(self, split: str | None = None) -> list[int]:
        """Frame indices of a split ("train" / "test"), or all frames for None."""
        if split is not None and split not in ("train", "test"):
            raise PerseError(f"unknown split '{split}'; use 'train' or 'test'")
        return [i for i, f in enumerate(self.frames) if split is None or f["split"] == split]

    def variant_index(self, i: int) -> dict[str, int]:
        """{category: variant index} of frame i (without reading its images)."""
        variants = self.frames[i]["variants"]
        return {c.name: c.index(variants[c.name]) for c in self.categories}

    def frames_with(self, category: str, variant: str, split: str | None = None) -> list[int]:
        """Indices of frames whose `category` is `variant`."""
        if category not in self._by_name:
            raise PerseError(f"unknown category '{category}'; this dataset has {', '.join(self._by_name)}")
        self._by_name[category].index(variant)
        return [i for i in self.indices(split) if self.frames[i]["variants"][category] == variant]

    def hair_layer(self, num_vertices: int | None = None):
        """The person's `perse.synth.hair.HairLayer` of a portrait dataset, or None (procedural heads,
        datasets made before hair layers)."""
        from perse.synth.generator import HAIR_LAYER_FILE
        from perse.synth.hair import HairLayer

        path = self.root / HAIR_LAYER_FILE
        return HairLayer.load(path, num_vertices) if path.exists() else None

    # -- loading -----------------------------------------------------------------------------------
    def load_frame(self, i: int) -> Frame:
        """Decode frame i (images as float tensors, camera, head parameters, variant indices)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range (dataset has {len(self)} frames)")
        i = i % len(self)
        if i in self._cache:
            return self._cache[i]
        import imageio.v3 as iio

        f = self.frames[i]
        img_path, reg_path = self.root / f["image"], self.root / f["regions"]
        try:
            rgba = iio.imread(img_path)
            bits = iio.imread(reg_path)
        except (OSError, ValueError) as exc:
            raise PerseError(f"cannot read frame {i} of {self.root} ({exc}); the dataset is incomplete: "
                             "regenerate it") from None
        H, W = self.image_size
        if rgba.shape != (H, W, 4) or rgba.dtype != np.uint8:
            raise PerseError(f"{img_path} is {rgba.dtype} {rgba.shape}, expected RGBA uint8 ({H}, {W}, 4)")
        if bits.shape != (H, W):
            raise PerseError(f"{reg_path} is {bits.shape}, expected a single-channel ({H}, {W}) mask")
        rgba_t = torch.from_numpy(rgba.astype(np.float32) / 255.0)
        frame = Frame(image=rgba_t[..., :3].contiguous(), alpha=rgba_t[..., 3:].contiguous(),
                      regions=torch.from_numpy(bits.astype(np.int64)),
                      camera=Camera.from_dict(f["camera"]), params=HeadParams.from_dict(f["params"]),
                      variant_index=self.variant_index(i), split=f["split"], index=i)
        if self.cache_enabled:
            self._cache[i] = frame
        return frame

    def category_mask(self, frame: Frame, category: str) -> Tensor:
        """(H, W) bool: where `category`'s bit is set in the frame's region mask."""
        c = self.category_names.index(category)
        return (frame.regions >> c) & 1 == 1


def _validate(meta: object, path: Path) -> dict:
    """Check the top-level structure of dataset.json; PerseError naming the first problem."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise PerseError(f"{path} is not a PERSE dataset (format must be '{FORMAT_NAME}'); regenerate it")
    if meta.get("version") != FORMAT_VERSION:
        raise PerseError(f"{path} has dataset version {meta.get('version')}, this PERSE reads version "
                         f"{FORMAT_VERSION}: regenerate the dataset or update PERSE")
    for key in ("image_size", "categories", "frames"):
        if key not in meta:
            raise PerseError(f"{path} lacks '{key}'; the file is corrupt: regenerate the dataset")
    try:
        cats = [Category.from_dict(c) for c in meta["categories"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise PerseError(f"{path} has an invalid category entry ({exc}); regenerate the dataset") from None
    names = {c.name for c in cats}
    for i, f in enumerate(meta["frames"]):
        missing = [k for k in _FRAME_KEYS if not isinstance(f, dict) or k not in f]
        if missing:
            raise PerseError(f"{path}: frame {i} lacks {', '.join(missing)}; regenerate the dataset")
        if set(f["variants"]) != names:
            raise PerseError(f"{path}: frame {i} has variants for {sorted(f['variants'])}, expected {sorted(names)}")
        if f["split"] not in ("train", "test"):
            raise PerseError(f"{path}: frame {i} has split '{f['split']}', expected train or test")
    return meta
