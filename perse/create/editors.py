"""Attribute editors for `perse create`: where the look of each attribute variant comes from.

Two editors (``perse create --editor builtin|diffusers:PATH``):

- ``builtin`` (`BuiltinEditor`, the default): no portrait is edited; the dataset generator paints every
  variant over the person's texture in UV space (`perse.synth.paint_portrait`).
- ``diffusers:PATH`` (`DiffusersEditor`): a LOCAL diffusers inpainting pipeline folder (what
  ``pipeline.save_pretrained(PATH)`` writes; nothing is ever downloaded). For every edited
  (category, variant) the portrait is inpainted with the variant's prompt (`EDIT_PROMPTS`) inside the
  category's region mask, and the edited portrait is projected onto the head with the same fit
  (`perse.create.portrait_texture`). That texture becomes the variant's look in the synthetic dataset
  (`generate_dataset(..., variant_textures=...)`), composited inside the category's UV region.
  Reference variants (the photo as is) and variants without a prompt are left to the built-in painter.

Region masks (`perse.create.edit_masks.portrait_edit_masks`): where each category's head regions lie
in the portrait, from the fitted head rendered with region labels and the photo's person mask. Edits are
blended back with a feathered alpha that is zero outside the mask, so pixels outside the mask stay
exactly the input's.

Determinism: each variant's noise comes from `variant_seed(seed, category, variant)` (a CRC of the
names, not Python's salted hash), on a CPU generator, so results repeat across runs and devices.
"""

from __future__ import annotations

import abc
import importlib.util
import json
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from perse.create.edit_masks import portrait_edit_masks
from perse.errors import PerseError

# Prompts per (category, variant). Reference variants are absent on purpose: they are the photo.
EDIT_PROMPTS: dict[tuple[str, str], str] = {
    ("hair", "black"): "a photo of a person with black hair",
    ("hair", "blonde"): "a photo of a person with blonde hair",
    ("hair", "red"): "a photo of a person with red hair",
    ("hair", "gray"): "a photo of a person with gray hair",
    ("beard", "stubble"): "a photo of a person with stubble on the chin and cheeks",
    ("beard", "goatee"): "a photo of a person with a goatee beard",
    ("beard", "full"): "a photo of a person with a full beard",
    ("eyebrows", "thick"): "a photo of a person with thick bushy eyebrows",
    ("eyebrows", "thin"): "a photo of a person with thin eyebrows",
    ("eyebrows", "light"): "a photo of a person with light blond eyebrows",
    ("glasses", "round"): "a photo of a person wearing round glasses",
    ("glasses", "rectangular"): "a photo of a person wearing rectangular glasses",
    ("glasses", "sunglasses"): "a photo of a person wearing sunglasses",
    ("hat", "cap"): "a photo of a person wearing a baseball cap",
    ("hat", "beanie"): "a photo of a person wearing a knitted beanie",
    ("earrings", "studs"): "a photo of a person wearing stud earrings",
    ("earrings", "hoops"): "a photo of a person wearing hoop earrings",
    ("lips", "red"): "a photo of a person wearing red lipstick",
    ("lips", "berry"): "a photo of a person wearing dark berry lipstick",
    ("lips", "pale"): "a photo of a person with pale nude lips",
    ("skin", "lighter"): "a photo of a person with lighter skin",
    ("skin", "darker"): "a photo of a person with darker skin",
    ("skin", "tan"): "a photo of a person with tanned skin",
}
NEGATIVE_PROMPT = "blurry, deformed, cartoon, painting, extra limbs, text, watermark"
DEFAULT_RESOLUTION = 512      # px; a pipeline whose native size is smaller (tiny test models) uses its own
FEATHER = 0.01                # of the portrait side: the blend ramps up inside the mask over this width


# --------------------------------------------------------------------------------------------------
# The --editor spec
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EditorSpec:
    """A parsed ``--editor`` value. kind: "builtin" | "diffusers"; path: the pipeline folder (diffusers)."""

    kind: str
    path: Path | None = None

    def __str__(self) -> str:
        return "builtin" if self.kind == "builtin" else f"diffusers:{self.path}"


def parse_editor_spec(spec: "str | EditorSpec | None") -> EditorSpec:
    """``"builtin"`` | ``"diffusers:PATH"`` -> EditorSpec, checking everything that can be checked
    without loading weights: the folder exists, holds a diffusers ``model_index.json`` naming an
    inpainting pipeline, and the libraries its components need are installed.

    Raises PerseError (one line, what is wrong and what to do) otherwise.
    """
    if isinstance(spec, EditorSpec):
        return spec if spec.kind == "builtin" else parse_editor_spec(str(spec))
    if spec is None or spec == "builtin":
        return EditorSpec("builtin")
    if not isinstance(spec, str) or not spec.startswith("diffusers:"):
        raise PerseError(f"unknown attribute editor '{spec}'; use 'builtin' or 'diffusers:PATH' (a local diffusers "
                         "inpainting pipeline folder)", setting="editor")
    raw = spec[len("diffusers:"):]
    if not raw.strip():
        raise PerseError("the diffusers editor needs a folder, e.g. diffusers:/models/sd-inpainting", setting="editor")
    path = Path(raw).expanduser()
    if not path.exists():
        raise PerseError(f"diffusers pipeline folder not found: {path}; pass the folder that "
                         "pipeline.save_pretrained() wrote")
    index = path / "model_index.json"
    if not path.is_dir() or not index.is_file():
        raise PerseError(f"{path} is not a diffusers pipeline folder (no model_index.json); pass the folder that "
                         "pipeline.save_pretrained() wrote")
    try:
        meta = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PerseError(f"{index} is unreadable ({type(exc).__name__}); re-save the pipeline") from None
    cls = meta.get("_class_name") if isinstance(meta, dict) else None
    if not isinstance(cls, str) or "Inpaint" not in cls:
        raise PerseError(f"{path} holds a {cls or 'unknown'} pipeline, not an inpainting pipeline; use an "
                         "inpainting model (e.g. a StableDiffusionInpaintPipeline)")
    libraries = {v[0] for v in meta.values() if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)}
    for lib in sorted(libraries | {"diffusers"}):
        if importlib.util.find_spec(lib) is None:
            hint = "transformers>=4.41.2 (see pyproject.toml)" if lib == "transformers" else lib
            raise PerseError(f"the pipeline in {path} needs the '{lib}' package, which is not installed; "
                             f"pip install {hint}")
    return EditorSpec("diffusers", path.resolve())


def variant_seed(seed: int, category: str, variant: str) -> int:
    """Deterministic 31-bit seed per (seed, category, variant), stable across processes."""
    return (zlib.crc32(f"{category}/{variant}".encode()) + 7919 * int(seed)) % (2 ** 31 - 1)


def edited_variants(categories: Sequence, prompts: dict[tuple[str, str], str] | None = None
                    ) -> list[tuple[str, str]]:
    """(category, variant) pairs a portrait editor edits: non-reference variants that have a prompt.

    categories: `perse.categories.Category` objects (their order is kept)."""
    table = EDIT_PROMPTS if prompts is None else prompts
    return [(c.name, v) for c in categories for v in c.non_reference if (c.name, v) in table]


# --------------------------------------------------------------------------------------------------
# Small pure functions: sizes, resizing and blending
# --------------------------------------------------------------------------------------------------
def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """(w, h) for the pipeline: the longer side becomes `resolution`, both multiples of 8 (>= 8)."""
    scale = resolution / max(width, height)
    to8 = lambda x: max(8, int(round(x * scale / 8.0)) * 8)  # noqa: E731
    return to8(width), to8(height)


def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """(H, W) float32 blend weight: 0 outside `mask` (exactly), rising to 1 over `feather_px` pixels
    inside it (distance to the nearest outside pixel)."""
    from scipy import ndimage

    if feather_px <= 0:
        return mask.astype(np.float32)
    inside = ndimage.distance_transform_edt(mask)
    return np.clip(inside / float(feather_px), 0.0, 1.0).astype(np.float32)


def blend_inside(original: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: `edited` where alpha is 1, `original` where alpha is 0 (bit-exact there)."""
    a = alpha[..., None].astype(np.float32)
    out = original.astype(np.float32) * (1.0 - a) + edited.astype(np.float32) * a
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[alpha <= 0] = original[alpha <= 0]
    return out


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[1], size[0], 3) uint8 (Lanczos)."""
    from PIL import Image

    if (image.shape[1], image.shape[0]) == tuple(size):
        return image.copy()
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.LANCZOS))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool -> (size[1], size[0]) bool; any covered part of a target pixel counts (never shrinks)."""
    from PIL import Image

    m = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
    return np.asarray(m) > 0


# --------------------------------------------------------------------------------------------------
# Editors
# --------------------------------------------------------------------------------------------------
class AttributeEditor(abc.ABC):
    """What `perse create` asks of an attribute editor.

    spec: the EditorSpec it was made from (recorded in stages.json and the avatar).
    variants(categories): the (category, variant) pairs it edits as portraits (others are painted).
    edit(image, mask, category, variant, seed, ...): the portrait with that variant, changed only
        inside `mask`.
    """

    spec: EditorSpec

    def load(self) -> None:
        """Load what editing needs (weights); called once before the first edit. Nothing by default."""

    @abc.abstractmethod
    def variants(self, categories: Sequence) -> list[tuple[str, str]]:
        """The (category, variant) pairs edited as portraits, in catalogue order."""

    @abc.abstractmethod
    def edit(self, image: np.ndarray, mask: np.ndarray, category: str, variant: str, seed: int = 0,
             cancel: Callable[[], bool] | None = None,
             on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(H, W, 3) uint8 portrait with `category` set to `variant`, changed only inside `mask` (H, W)."""


class BuiltinEditor(AttributeEditor):
    """The procedural painter: edits no portrait; every variant is painted in UV space by the generator."""

    def __init__(self):
        self.spec = EditorSpec("builtin")

    def variants(self, categories: Sequence) -> list[tuple[str, str]]:
        return []

    def edit(self, image, mask, category, variant, seed=0, cancel=None, on_step=None) -> np.ndarray:
        raise PerseError("the built-in editor paints variants on the texture and edits no portrait; "
                         "use a diffusers editor (diffusers:PATH) for portrait edits", setting="editor")


class DiffusersEditor(AttributeEditor):
    """Portrait edits with a local diffusers inpainting pipeline.

    Args:
        path: the pipeline folder (``save_pretrained`` output) or an EditorSpec / "diffusers:PATH".
        device: "auto" (CUDA when available), "cpu" or "cuda".
        steps: denoising steps per edit. guidance_scale: classifier-free guidance.
        resolution: working size of the longer side (multiple of 8); None = DEFAULT_RESOLUTION, or the
            pipeline's native size when that is smaller (tiny models).
        categories: restrict edits to these category names (None: every category with prompts).
        prompts: override the prompt table (same keys as EDIT_PROMPTS).
    The pipeline is loaded on the first edit, with ``local_files_only=True`` and HF_HUB_OFFLINE=1.
    """

    def __init__(self, path, device: str = "auto", steps: int = 30, guidance_scale: float = 7.5,
                 resolution: int | None = None, categories: Sequence[str] | None = None,
                 prompts: dict[tuple[str, str], str] | None = None):
        if isinstance(path, EditorSpec) or (isinstance(path, str) and path.startswith("diffusers:")):
            spec = parse_editor_spec(path)
        else:
            spec = parse_editor_spec(f"diffusers:{path}")
        if spec.kind != "diffusers":
            raise PerseError("DiffusersEditor needs a diffusers pipeline folder, got 'builtin'")
        if steps < 1:
            raise PerseError(f"editor steps must be >= 1, got {steps}")
        if resolution is not None and (resolution < 8 or resolution % 8):
            raise PerseError(f"editor resolution must be a positive multiple of 8, got {resolution}")
        self.spec = spec
        self.steps = int(steps)
        self.guidance_scale = float(guidance_scale)
        self.categories = None if categories is None else list(categories)
        self.prompts = dict(EDIT_PROMPTS if prompts is None else prompts)
        self.device = _resolve_device(device)
        self._resolution = None if resolution is None else int(resolution)
        self._pipe = None

    def load(self) -> None:
        if self._pipe is None:
            self._pipe = load_inpainting_pipeline(self.spec.path, self.device)

    @property
    def pipe(self):
        """The loaded pipeline (loaded on first use: a resumed run whose edits exist never loads it)."""
        self.load()
        return self._pipe

    @property
    def resolution(self) -> int:
        """Working size of the longer side: as given, else DEFAULT_RESOLUTION or the native size if smaller."""
        if self._resolution is None:
            self._resolution = min(DEFAULT_RESOLUTION, native_resolution(self.pipe))
        return self._resolution

    def variants(self, categories: Sequence) -> list[tuple[str, str]]:
        cats = [c for c in categories if self.categories is None or c.name in self.categories]
        return edited_variants(cats, self.prompts)

    def edit(self, image: np.ndarray, mask: np.ndarray, category: str, variant: str, seed: int = 0,
             cancel: Callable[[], bool] | None = None,
             on_step: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Inpaint `image` (H, W, 3) uint8 inside `mask` (H, W) bool with the variant's prompt.

        The pipeline runs at `working_size` (multiples of 8) and its output is resized back and blended
        with a feathered alpha that is 0 outside `mask`, so those pixels equal the input exactly.
        cancel() is polled every denoising step (True raises KeyboardInterrupt); on_step(done, total).
        """
        import torch
        from PIL import Image

        prompt = self.prompts.get((category, variant))
        if prompt is None:
            raise PerseError(f"no edit prompt for {category}/{variant}; it is painted by the built-in editor")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PerseError(f"the portrait to edit must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if mask.shape != image.shape[:2]:
            raise PerseError(f"edit mask is {mask.shape}, the portrait {image.shape[:2]}: they must match")
        if not mask.any():
            return image.copy()
        H, W = image.shape[:2]
        w, h = working_size(W, H, self.resolution)
        small = Image.fromarray(resize_rgb(image, (w, h)))
        small_mask = Image.fromarray(resize_mask(mask, (w, h)).astype(np.uint8) * 255)

        def step_end(pipe, step, timestep, kwargs):
            if cancel is not None and cancel():
                raise KeyboardInterrupt(f"cancelled while editing {category}/{variant}")
            if on_step is not None:
                on_step(step + 1, self.steps)
            return kwargs

        # A CPU generator: the same noise on every device (diffusers moves it to the pipeline's device).
        generator = torch.Generator("cpu").manual_seed(int(seed))
        with torch.inference_mode():
            result = self.pipe(prompt=prompt, negative_prompt=NEGATIVE_PROMPT, image=small, mask_image=small_mask,
                               height=h, width=w, num_inference_steps=self.steps,
                               guidance_scale=self.guidance_scale, generator=generator, output_type="np",
                               callback_on_step_end=step_end)
        out = np.asarray(result.images[0], dtype=np.float32)
        if out.shape[:2] != (h, w) or not np.isfinite(out).all():
            raise PerseError(f"the inpainting pipeline returned an invalid image for {category}/{variant} "
                             f"({out.shape}); check the model (fp16 overflow? try the cpu device)", setting="device")
        edited = resize_rgb(np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8), (W, H))
        return blend_inside(image, edited, feather_alpha(mask, FEATHER * max(H, W)))


def make_editor(spec: "str | EditorSpec | AttributeEditor | None", device: str = "auto") -> AttributeEditor:
    """An editor from a spec string ("builtin" | "diffusers:PATH"), an EditorSpec, or an editor as is."""
    if isinstance(spec, AttributeEditor):
        return spec
    parsed = parse_editor_spec(spec)
    return BuiltinEditor() if parsed.kind == "builtin" else DiffusersEditor(parsed, device=device)


def _resolve_device(device: str) -> str:
    import torch

    if device in ("auto", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PerseError("the cuda device was asked for but CUDA is not available; use the cpu device", setting="device")
    if device not in ("cpu", "cuda"):
        raise PerseError(f"unknown device '{device}'; use auto, cpu or cuda")
    return device


def load_inpainting_pipeline(path: Path, device: str):
    """Load the inpainting pipeline in `path` from local files only (never the network)."""
    # Belt and braces: huggingface_hub refuses every request when offline, whatever a component asks.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import diffusers
    import torch

    meta = json.loads((path / "model_index.json").read_text())
    cls = getattr(diffusers, meta["_class_name"], None)
    if cls is None:
        raise PerseError(f"{path} needs diffusers' {meta['_class_name']}, which diffusers {diffusers.__version__} "
                         "lacks; update diffusers")
    # Half precision on CUDA (memory, speed); the default float32 on the CPU. Newer diffusers rename
    # torch_dtype to dtype and warn about the old name, which older ones still need.
    kwargs = {"torch_dtype": torch.float16} if device == "cuda" else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            pipe = cls.from_pretrained(str(path), local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PerseError(f"cannot load the diffusers pipeline in {path} ({first[:200]}); re-save it with "
                         "save_pretrained") from None
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)  # our own bar counts every edit's steps
    return pipe


def native_resolution(pipe) -> int:
    """The pipeline's native image size: its UNet's latent sample size times the VAE's scale factor."""
    sample = getattr(getattr(pipe, "unet", None), "config", None)
    sample = getattr(sample, "sample_size", None) if sample is not None else None
    if isinstance(sample, (list, tuple)):
        sample = max(sample)
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if not sample:
        return DEFAULT_RESOLUTION
    return max(8, int(sample) * scale // 8 * 8)


# --------------------------------------------------------------------------------------------------
# Orchestration for `perse create`
# --------------------------------------------------------------------------------------------------
def edit_file(folder: Path, category: str, variant: str, kind: str = "portrait") -> Path:
    """Where an edited portrait ("portrait") or its texture ("texture") is stored in the work folder."""
    return folder / f"{category}_{variant}.{kind}.png"


def edit_portraits(editor: AttributeEditor, portrait: np.ndarray, head, fit, categories: Sequence, folder: Path,
                   seed: int = 0, progress: bool = True, cancel: Callable[[], bool] | None = None,
                   on_fraction: Callable[[float], None] | None = None,
                   renderer=None) -> dict[tuple[str, str], Path]:
    """Edit the portrait for every variant the editor handles; PNGs in `folder` (kept for --resume:
    existing ones are not redone). Returns {(category, variant): edited portrait path}.

    portrait: (H, W, 3) uint8, the image `fit` was made on."""
    from perse.track.image_io import save_png

    pairs = editor.variants(categories)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [p for p in pairs if not edit_file(folder, *p).exists()]
    out = {p: edit_file(folder, *p) for p in pairs}
    if not todo:
        return out
    needed = {cat for cat, _ in todo}
    masks = portrait_edit_masks(head, fit, portrait, [c for c in categories if c.name in needed], renderer)
    editor.load()  # before the bar: loading a real model takes a while and shows its own progress
    steps = int(getattr(editor, "steps", 1))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) * steps, desc="editor", unit="step", dynamic_ncols=True)
    try:
        for k, (cat, var) in enumerate(todo):
            if cancel is not None and cancel():
                raise KeyboardInterrupt(f"cancelled before editing {cat}/{var}")
            if bar is not None:
                bar.set_description(f"editor {cat}/{var} ({k + 1}/{len(todo)})")
            mask = masks[cat]
            done = [0]

            def on_step(i, n, k=k, done=done):
                if bar is not None:
                    bar.update(i - done[0])
                done[0] = i
                if on_fraction is not None:
                    on_fraction((k + i / n) / len(todo))

            edited = editor.edit(portrait, mask, cat, var, variant_seed(seed, cat, var), cancel=cancel,
                                 on_step=on_step)
            save_png(out[(cat, var)], edited)
    finally:
        if bar is not None:
            bar.close()
    return out


def edited_textures(edits: dict[tuple[str, str], Path], head, fit, texture_size: int, folder: Path,
                    seed: int = 0, renderer=None, progress: bool = True,
                    cancel: Callable[[], bool] | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Project every edited portrait onto the head with the same fit (`portrait_texture`); the textures
    are cached as PNGs in `folder` for --resume. Returns {(category, variant): (S, S, 3) uint8}."""
    import imageio.v2 as imageio

    from perse.create.portrait_texture import portrait_texture
    from perse.track.image_io import save_png

    out: dict[tuple[str, str], np.ndarray] = {}
    bar = None
    if progress and edits:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(edits), desc="editor: textures", unit="tex", dynamic_ncols=True)
    try:
        for (cat, var), path in edits.items():
            if cancel is not None and cancel():
                raise KeyboardInterrupt(f"cancelled before texturing {cat}/{var}")
            tex_path = edit_file(folder, cat, var, "texture")
            texture = imageio.imread(tex_path)[..., :3] if tex_path.exists() else None
            if texture is None or texture.shape[0] != texture_size:
                image = imageio.imread(path)[..., :3]
                try:
                    texture = portrait_texture(image, head, fit, size=texture_size, renderer=renderer,
                                               seed=seed).texture
                except PerseError as exc:
                    raise PerseError(f"edited portrait {path.name}: {exc}") from None
                save_png(tex_path, texture)
            out[(cat, var)] = np.ascontiguousarray(texture)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out
