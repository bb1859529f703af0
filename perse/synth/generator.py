"""The built-in synthetic attribute dataset generator.

For every frame it picks a *look* (one variant per attribute category), a sparse random expression, a
head pose and a camera, then renders the head (procedurally painted texture, or a person's texture with
the look painted over it, `perse.synth.paint_procedural`, `perse.synth.paint_portrait`) with the look's
accessories (`perse.synth.accessories`, bound to the head so they follow the pose) with the offscreen GL
`MeshRenderer` (`perse.synth.frame_renderer`). Region labels of the same render give per-category
visibility masks. What is drawn, and the settings that govern it: `perse.synth.sampling`.

Looks. Most frames switch ONE category away from its reference variant (every non-reference variant
gets `num_frames_per_variant` such frames), `num_frames_per_variant` frames are fully reference, and
about `double_fraction` of the training frames switch two categories at once (`SynthSettings`).

Train / test split. About `test_fraction` of the frames are marked ``"test"``. Their looks cycle
through the reference and every single-category variant (so every variant is evaluated), but their
expression, pose and camera come from an independent random stream (seeded by ``(seed, 1)`` instead of
``(seed, 0)``), and their camera orbit is drawn from a wider band (|yaw| up to 30 degrees instead of 20)
so the held-out views are partly outside the training views.

DATASET FORMAT (version 1; `perse.synth.dataset.AttributeDataset` reads it, the trainer relies on it)::

    DATASET/dataset.json = {
      "format": "perse-dataset", "version": 1,
      "head": {"kind": "builtin" | "flame", "name": str, "sha256": str | null},
      "image_size": [H, W],
      "categories": [{"name", "variants": [...], "reference", "none": str | null, "regions": [...]}],
                    # fixed order; category index c = bit c of the region masks
      "frames": [{"image": "images/000000.png", "regions": "regions/000000.png",
                  "split": "train" | "test",
                  "camera": Camera.to_dict(),
                  "params": HeadParams.to_dict() with batch size 1 (all 8 fields),
                  "variants": {category_name: variant_name, ...},    # every category present
                  "reference": true,     # only on frames at the portrait's own view (see below)
                  "wide": true,          # only on views from any angle around the head (sides, back)
                  "mouth": true}],       # only on close-ups of the open mouth (`mouth_closeup_fraction`)
      "generator": {settings, seed, ..., "base_texture": {"file", "size", "sha256"} | null,
                    "identity_shape": [S floats] | null, "reference_frames": int,
                    "photo_teeth_vertices": int}   # crown vertices painted from the photo
    }
    seeds.npz           surface samples of every accessory variant and of the mouth, bound to head
                        triangles, for the avatar's initial Gaussians (`perse.avatar.seeds`).
    base_texture.png    only with a base texture: the texture the looks were painted over (RGB uint8).
    hair_layer.npz      only with a hair layer (`perse.synth.hair.HairLayer`): per-vertex shell thickness
                        and texture-space hair coverage of the person.
    variant_textures/CATEGORY_VARIANT.png  only with variant textures (an attribute editor's edits): used
                        instead of painting for that variant, inside the category's UV region;
                        listed in generator["variant_textures"] as {"category", "variant", "file", "sha256"}.
    images/NNNNNN.png   RGBA uint8; alpha = coverage of head + accessories; RGB is straight (not
                        premultiplied) colour, 0 on the background.
    regions/NNNNNN.png  uint16 single channel; bit c set where category c's region (its head regions plus
                        its accessory geometry, from the label render) is visible, dilated a few pixels.

A person (`perse create`): `base_texture` replaces the procedural albedo, and with the portrait's view
(`perse.synth.reference.ReferenceView`: camera, fitted parameters, photo) every frame's params.identity
is the fit's identity and a few training frames repeat the portrait's own view in the reference look
(they weight that view in training; see `generate_dataset`). With an attribute editor (`perse create
--editor diffusers:PATH`), `variant_textures` gives edited variants their own texture (the edited
portrait projected on the head) instead of the painted one.

The folder is built as ``OUT.partial`` and renamed to ``OUT`` at the very end; any error or Ctrl-C
removes the partial folder, so ``OUT`` only ever holds a complete dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from perse.avatar.seeds import SEEDS_FILE, save_seeds
from perse.errors import PerseError
from perse.geometry.rotations import axis_angle_to_matrix
from perse.head.model import HeadModel, HeadParams
from perse.render.camera import Camera
from perse.synth.accessories import ACCESSORY_LABEL_BASE
from perse.synth.frame_renderer import FrameRenderer
from perse.synth.hair import HairLayer
from perse.synth.reference import ReferenceView, with_photo_features
from perse.synth.reference import frame_camera as reference_crop
from perse.synth.sampling import FramePlan, SynthSettings, ViewSampler, plan_frames
from perse.synth.seeding import dataset_seeds
from perse.synth.variants import Category, category_by_name, reference_look

FORMAT_NAME = "perse-dataset"
FORMAT_VERSION = 1
HAIR_LAYER_FILE = "hair_layer.npz"


def generate_dataset(out_dir: str | os.PathLike, head: HeadModel, settings: SynthSettings | None = None, *,
                     reference: ReferenceView | None = None, identity: torch.Tensor | None = None,
                     base_texture: np.ndarray | None = None,
                     variant_textures: dict[tuple[str, str], np.ndarray] | None = None,
                     hair_layer: HairLayer | None = None, renderer=None,
                     on_frame: Callable[[int, int], None] | None = None, progress: bool = True,
                     overwrite: bool = False) -> Path:
    """Render a synthetic attribute dataset into `out_dir` (format: see the module docstring).

    Args:
        out_dir: target folder; must not exist or be empty unless `overwrite`.
        head: a HeadModel with uvs, uv_faces, vertex_regions and the 478-landmark embedding (built-in head).
        settings: what to make (`SynthSettings`: frame counts and shares, sizes, seed, categories, pose
            and camera ranges); None: the defaults. Everything (looks, textures, poses, cameras) is
            determined by its seed.
        reference: the portrait's view (`perse.synth.reference.ReferenceView`). Its `frames` frames
            (training, reference look, marked ``"reference": true``) alternate between the portrait's
            framing and a crop on the head; with the photo they show its eyes and open mouth (the
            person's own teeth), so the avatar learns the person as photographed. Its params.identity is
            every frame's identity.
        identity: (S,) identity coefficients used as params.identity of every frame (the person's head
            shape), for a dataset without a view; with one it must equal the view's. None: the
            view's identity, else the template head.
        base_texture: (T, T, 3) uint8 albedo in the head's UV layout (e.g. projected from a portrait):
            the reference look is this texture and every other variant is painted over it (see
            `perse.synth.paint_portrait`). None: the procedural texture.
        variant_textures: {(category, variant): (T, T, 3) uint8} textures used instead of painting for
            those variants (e.g. portraits edited by `perse.create.editors`, projected on the head),
            composited inside the category's UV region (`FrameRenderer.texture`); accessory geometry
            still follows the look. Saved as ``variant_textures/CATEGORY_VARIANT.png``.
        hair_layer: the person's hair layer (`perse.synth.hair`): the scalp is drawn offset by its
            thickness and its coverage tells hair-colour variants which texels are hair. Saved as
            ``hair_layer.npz`` (the trainer seeds Gaussians on the shell).
        renderer: an existing `MeshRenderer` to reuse (else one is created and closed).
        on_frame: called as on_frame(done, total) after every written frame (GUIs, tests).
        progress: show tqdm bars (stage and ETA).
        overwrite: replace a non-empty `out_dir`.
    Returns:
        The dataset folder.
    """
    settings = SynthSettings() if settings is None else settings
    settings.validate()
    out = _target_folder(out_dir, overwrite)
    cats = [category_by_name(n) for n in settings.categories]
    if reference is not None:
        reference.validate()
    identity = identity_vector(head, identity, reference)
    if base_texture is not None:
        from perse.synth.uv_atlas import check_base_texture

        check_base_texture(base_texture)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    t_start = time.perf_counter()
    frame_renderer = None
    try:
        (partial / "images").mkdir(parents=True)
        (partial / "regions").mkdir()
        jobs = plan_jobs(head, cats, settings, reference)
        frame_renderer = FrameRenderer(head, cats, settings.texture_size, settings.seed, renderer,
                                       base_texture=base_texture, variant_textures=variant_textures,
                                       hair_layer=hair_layer, neck_fade_m=settings.neck_fade_m,
                                       teeth_color=None if reference is None else reference.teeth_color())
        photo_teeth = 0 if reference is None else frame_renderer.use_photo_teeth(reference)
        paint_all(frame_renderer, [job.plan for job in jobs], progress)
        variant_files = write_inputs(partial, frame_renderer, base_texture, hair_layer)
        t_render = time.perf_counter()
        frames = render_frames(partial, jobs, frame_renderer, identity, settings, on_frame, progress)
        render_s = time.perf_counter() - t_render
        write_seeds(partial, frame_renderer, identity, settings.seed)
        generator = generator_record(settings, jobs, base_texture, variant_files, identity, render_s,
                                     time.perf_counter() - t_start)
        generator["photo_teeth_vertices"] = photo_teeth
        write_metadata(partial, dataset_meta(head, cats, settings, frames, generator))
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if frame_renderer is not None:
            frame_renderer.close()
    return out


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
def _target_folder(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """`out_dir` as a Path, checked: empty or absent (unless `overwrite`), in an existing folder."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise PerseError(f"{out} already exists and is not empty: choose another folder or pass overwrite")
    if not out.parent.exists():
        raise PerseError(f"cannot write {out}: folder {out.parent} does not exist (create it first)")
    return out


def identity_vector(head: HeadModel, identity, reference: ReferenceView | None) -> torch.Tensor | None:
    """(1, S) float32 identity of every frame, or None (the template head).

    identity: (S') with S' <= S (missing coefficients are zero). Without it, the reference view's
    params.identity is the identity. Both given and different is an error: the frames would show two people.
    """
    ref_identity = None if reference is None else reference.params.identity
    if identity is None and ref_identity is None:
        return None
    vecs = []
    for name, value, batched in (("identity", identity, False),
                                 ("the reference view's params.identity", ref_identity, True)):
        if value is None:
            vecs.append(None)
            continue
        v = torch.as_tensor(value, dtype=torch.float32).detach().cpu()
        if batched:
            if v.ndim != 2 or v.shape[0] != 1:
                raise PerseError(f"the reference view's params must have batch size 1, its identity is {tuple(v.shape)}")
            v = v[0]
        if v.ndim != 1 or v.shape[0] > head.num_shape:
            raise PerseError(f"{name} has shape {tuple(v.shape)}; expected ({head.num_shape},) identity "
                             "coefficients of this head model")
        if not torch.isfinite(v).all():
            raise PerseError(f"{name} contains NaN or infinite values; refit the portrait")
        vecs.append(torch.cat([v, torch.zeros(head.num_shape - v.shape[0])]))
    ident, ref = vecs
    if ident is not None and ref is not None and (ident - ref).abs().max() > 1e-4:
        raise PerseError("the identity differs from the reference view's params.identity; give the portrait "
                         "fit's identity once, in the view")
    return (ident if ident is not None else ref)[None]


def complete_params(head: HeadModel, params: HeadParams) -> HeadParams:
    """Batch-1 params with every field filled (None -> zeros, short identity/expression zero-padded), float32."""
    zero = head.zero_params()
    out = {}
    for f in dc_fields(HeadParams):
        value, ref = getattr(params, f.name), getattr(zero, f.name)
        if value is None:
            out[f.name] = ref.detach().cpu().float().clone()
            continue
        v = torch.as_tensor(value).detach().cpu().float().reshape(1, -1)
        if v.shape[1] > ref.shape[1]:
            raise PerseError(f"the reference view's params.{f.name} has {v.shape[1]} values; this head model "
                             f"takes {ref.shape[1]}")
        if not torch.isfinite(v).all():
            raise PerseError(f"the reference view's params.{f.name} contains NaN or infinite values; refit the portrait")
        out[f.name] = torch.cat([v, torch.zeros(1, ref.shape[1] - v.shape[1])], dim=1)
    return HeadParams(**out)


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------
@dataclass
class FrameJob:
    """One frame to render. A sampled frame has only its plan; a frame of the portrait's view has its
    `view`, its fixed `params` and `camera` (None: the view cropped on the posed head)."""

    plan: FramePlan
    view: ReferenceView | None = None
    params: HeadParams | None = None
    camera: Camera | None = None


def plan_jobs(head: HeadModel, categories: list[Category], settings: SynthSettings,
              reference: ReferenceView | None) -> list[FrameJob]:
    """Every frame of the dataset, in order: the sampled frames (`plan_frames`, stream (seed, 2)), then
    the portrait's view (last, so the sampled frames keep the numbering they have without it)."""
    jobs = [FrameJob(plan) for plan in plan_frames(categories, settings, np.random.default_rng([settings.seed, 2]))]
    if reference is not None:
        params = complete_params(head, reference.params)
        size = settings.image_size   # the view's camera is square (`ReferenceView.validate`)
        full = reference.camera.resized(size, size) if reference.camera.width != size else reference.camera
        # Every other frame is cropped on the head.
        jobs += [FrameJob(FramePlan(reference_look(categories), "train"), reference, params,
                          full if k % 2 == 0 else None) for k in range(int(reference.frames))]
    return jobs


def paint_all(fr: FrameRenderer, plans: list[FramePlan], progress: bool) -> None:
    """Paint every distinct texture up front (its own progress stage)."""
    from perse.synth.palette import TEXTURE_CATEGORIES

    looks = {}
    for p in plans:
        # Edited variants make a texture depend on more than the texture categories.
        edited = tuple(p.look.get(c.name) for c in fr.categories
                       if (c.name, p.look.get(c.name)) in fr.variant_textures)
        looks.setdefault(tuple(p.look.get(c) for c in TEXTURE_CATEGORIES) + edited, p.look)
    bar = _bar(len(looks), "synth: painting textures", "tex", progress)
    for look in looks.values():
        fr.texture(look)
        fr.accessories.get(look)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()


def write_inputs(folder: Path, fr: FrameRenderer, base_texture: np.ndarray | None,
                 hair_layer: HairLayer | None) -> list[dict]:
    """The person's data the frames were made from: hair layer, base texture, variant textures.
    Returns the variant textures' entries of dataset.json["generator"]."""
    if hair_layer is not None:
        hair_layer.save(folder / HAIR_LAYER_FILE)
    if base_texture is not None:
        _write_png(folder / "base_texture.png", base_texture)
    variant_files = []
    if fr.variant_textures:
        (folder / "variant_textures").mkdir()
    for (cat, var), tex in fr.variant_textures.items():
        rel = f"variant_textures/{cat}_{var}.png"
        _write_png(folder / rel, tex)
        variant_files.append({"category": cat, "variant": var, "file": rel, "sha256": texture_sha256(tex)})
    return variant_files


def render_frames(folder: Path, jobs: list[FrameJob], fr: FrameRenderer, identity: torch.Tensor | None,
                  settings: SynthSettings, on_frame: Callable[[int, int], None] | None, progress: bool) -> list[dict]:
    """Render and write every frame (images/, regions/); returns their dataset.json entries."""
    sampler = ViewSampler(fr.head, fr.categories, settings, mouth=np.flatnonzero(fr.anatomy.vertex_mask(["lips"])))
    frames = []
    bar = _bar(len(jobs), "synth: rendering frames", "frame", progress)
    for i, job in enumerate(jobs):
        rgba, bits, entry = render_frame(job, fr, sampler, identity, settings)
        image_rel, region_rel = f"images/{i:06d}.png", f"regions/{i:06d}.png"
        _write_png(folder / image_rel, rgba)
        _write_png(folder / region_rel, bits)
        frames.append({"image": image_rel, "regions": region_rel, **entry})
        if bar is not None:
            bar.update(1)
        if on_frame is not None:
            on_frame(i + 1, len(jobs))
    if bar is not None:
        bar.close()
    return frames


def render_frame(job: FrameJob, fr: FrameRenderer, sampler: ViewSampler, identity: torch.Tensor | None,
                 settings: SynthSettings) -> tuple[np.ndarray, np.ndarray, dict]:
    """One frame: RGBA (H, W, 4) uint8, region bits (H, W) uint16, and its dataset.json entry without
    the file names."""
    params = sampler.params(job.plan) if job.view is None else job.params
    if identity is not None:
        params.identity = identity.clone()
    verts = fr.posed_vertices(params)
    kind = "head"
    if job.view is None:
        camera, kind = sampler.camera(job.plan, verts)
    else:
        camera = job.camera or reference_crop(job.view, verts, settings.image_size)
    head_rot = axis_angle_to_matrix(params.global_rot[0].numpy()) @ axis_angle_to_matrix(params.neck_rot[0].numpy())
    rgba, bits, _ = fr.render(job.plan.look, verts, camera, settings.region_dilation(), head_rot)
    if job.view is not None:
        rgba = with_photo_features(rgba, job.view, camera)
    entry = {"split": job.plan.split, "camera": camera.to_dict(), "params": params.to_dict(),
             "variants": {c.name: job.plan.look[c.name] for c in fr.categories}}
    if job.view is not None:
        entry["reference"] = True
    if kind != "head":
        entry[kind] = True
    return rgba, bits, entry


def write_seeds(folder: Path, fr: FrameRenderer, identity: torch.Tensor | None, seed: int) -> None:
    """Seeds for the avatar's Gaussians: the accessory and mouth geometry just rendered, sampled on the
    identity's neutral head with stream (seed, 4) (format: `perse.avatar.seeds`)."""
    neutral = fr.head.zero_params()
    if identity is not None:
        neutral.identity = identity.clone()
    save_seeds(folder / SEEDS_FILE, dataset_seeds(fr, fr.posed_vertices(neutral), np.random.default_rng([seed, 4])))


def generator_record(settings: SynthSettings, jobs: list[FrameJob], base_texture: np.ndarray | None,
                     variant_files: list[dict], identity: torch.Tensor | None, render_s: float,
                     total_s: float) -> dict:
    """dataset.json["generator"]: the settings and what the frames were made from."""
    return {**asdict(settings), "generator": "perse.synth.builtin", "region_dilation_px": settings.region_dilation(),
            "accessory_label_base": ACCESSORY_LABEL_BASE, "frames_per_second": len(jobs) / max(render_s, 1e-9),
            "base_texture": None if base_texture is None else {
                "file": "base_texture.png", "size": int(base_texture.shape[0]),
                "sha256": texture_sha256(base_texture)},
            "variant_textures": variant_files, "seeds": SEEDS_FILE,
            "identity_shape": None if identity is None else identity[0].tolist(),
            "reference_frames": sum(1 for job in jobs if job.view is not None),
            "seconds": total_s,
            "test_views": "independent random stream (seed, 1); camera yaw up to "
                          f"{settings.camera_yaw_test_deg} deg vs {settings.camera_yaw_deg} in training"}


def dataset_meta(head: HeadModel, categories: list[Category], settings: SynthSettings, frames: list[dict],
                 generator: dict) -> dict:
    """The whole dataset.json."""
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "head": head_identity(head),
            "image_size": [settings.image_size, settings.image_size],
            "categories": [c.to_dict() for c in categories], "frames": frames, "generator": generator}


def write_metadata(folder: Path, meta: dict) -> None:
    """dataset.json and the README.md that describes it."""
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1))
    (folder / "README.md").write_text(dataset_readme(meta))


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------
def head_identity(head: HeadModel) -> dict:
    """The "head" entry of dataset.json."""
    kind = head.kind if head.kind in ("builtin", "flame") else "builtin"
    return {"kind": kind, "name": str(head.meta.get("name", kind)), "sha256": head.meta.get("sha256")}


def texture_sha256(texture: np.ndarray) -> str:
    """sha256 hex of a (T, T, 3) uint8 texture's raw C-order bytes (not of its PNG encoding)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(texture, dtype=np.uint8).tobytes()).hexdigest()


def _write_png(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, array, extension=".png")


def _bar(total: int, desc: str, unit: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


def dataset_readme(meta: dict) -> str:
    """README.md text describing a dataset folder (format and contents)."""
    cats = meta["categories"]
    n = len(meta["frames"])
    n_test = sum(f["split"] == "test" for f in meta["frames"])
    lines = [
        "# PERSE synthetic attribute dataset",
        "",
        f"{n} frames ({n - n_test} train, {n_test} test), {meta['image_size'][1]}x{meta['image_size'][0]} pixels, "
        f"head: {meta['head']['kind']} '{meta['head']['name']}'.",
        "",
        "## Format (perse-dataset, version 1)",
        "",
        "- `dataset.json`: `format`, `version`, `head` {kind, name, sha256}, `image_size` [H, W], `categories`",
        "  (ordered; category index c = bit c of the region masks), `frames`, `generator` (settings, seed).",
        "- Each frame: `image`, `regions` (paths), `split` (train|test), `camera` (OpenCV pinhole: K,",
        "  world_to_cam, width, height, near, far), `params` (head parameters, batch 1: shape, expression,",
        "  global_rot, neck_rot, jaw_rot, eye_left_rot, eye_right_rot, translation), `variants`",
        "  {category: variant} for every category.",
        "- `images/NNNNNN.png`: RGBA uint8. Alpha = coverage of head and accessories. RGB is straight",
        "  (not premultiplied) colour; background pixels are RGB 0.",
        "- `regions/NNNNNN.png`: uint16 single channel. Bit c is set where category c's region (its head",
        "  regions plus its accessory geometry) is visible, dilated by "
        f"{meta['generator'].get('region_dilation_px', '?')} px.",
        "",
        "## Categories (bit: name: variants, reference first marked *)",
        "",
    ]
    for i, c in enumerate(cats):
        vs = ", ".join(("*" if v == c["reference"] else "") + v for v in c["variants"])
        lines.append(f"- bit {i}: `{c['name']}`: {vs}; regions: {', '.join(c['regions'])}")
    lines += ["", "## Split", "", str(meta["generator"].get("test_views", "")), ""]
    return "\n".join(lines)
