"""`perse create` end to end on the astronaut portrait, at a tiny quality so it runs in CI."""

import json
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import skimage.data
from PIL import Image

from perse.avatar import load_avatar, read_avatar_meta
from perse.cli import main
from perse.create.pipeline import STAGES, Quality, create_avatar, run_stage
from perse.create.stage_log import StageLog
from perse.create.stages import Stage, square_crop_box
from perse.errors import PerseError

TINY = Quality("tiny", image_size=64, frames_per_variant=1, texture_size=256, cpu_steps=15, cuda_steps=15,
               num_gaussians=1500, expected_s=(1,) * 7, reference_frames=5)


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    imageio.imwrite(path, skimage.data.astronaut())
    return path


@pytest.fixture(scope="module")
def created(portrait, tmp_path_factory):
    out = tmp_path_factory.mktemp("created") / "astro.perse"
    lines = []
    summary = create_avatar(portrait, out, quality=TINY, device="cpu", print_fn=lines.append)
    return out, summary, lines


def test_square_crop_keeps_the_face_centred():
    face = np.array([[300.0, 100.0], [340.0, 140.0]])
    assert square_crop_box(face, 1000, 400) == (120, 0, 400)
    assert square_crop_box(face, 400, 400) == (0, 0, 400)


def test_create_runs_every_stage_and_keeps_the_reference_view(created):
    out, summary, lines = created
    work = out.with_name(out.name + ".work")
    assert list(json.loads((work / "stages.json").read_text())) == list(STAGES)
    meta = read_avatar_meta(out)
    ref = meta["reference_view"]
    assert ref["camera"]["width"] == 512 and "identity" in ref["params"]
    assert meta["training"]["create"]["fit_error_iod"] < 0.02
    assert summary["evaluation"]["psnr"] > 10  # 15 steps: a sanity bound, not the quality target
    assert any(line.startswith("[1/7] detect") for line in lines) and any("wrote" in line for line in lines)
    avatar = load_avatar(out)
    assert avatar.identity.abs().sum() > 0  # the person's fitted shape, not the template
    generator = json.loads((work / "dataset" / "dataset.json").read_text())["generator"]
    assert generator["reference_frames"] == TINY.reference_frames   # the quality's share of the portrait's view


def test_reference_view_renders_through_the_cli(created, tmp_path):
    out, _, _ = created
    png = tmp_path / "ref.png"
    assert main(["render", str(out), "--view", "reference", "--size", "96", "--out", str(png), "--backend", "cpu"]) == 0
    assert imageio.imread(png).shape == (96, 96, 3)


def test_resume_skips_finished_stages(created, portrait):
    out, _, _ = created
    lines = []
    create_avatar(portrait, out, quality=TINY, device="cpu", resume=True, print_fn=lines.append)
    started = [line.split("]")[1].split()[0] for line in lines if line.startswith("[")]
    assert started == ["save"]


def test_resume_past_detection_does_not_need_the_photo_again(created, tmp_path):
    out, _, _ = created
    lines = []
    create_avatar(tmp_path / "moved.png", out, quality=TINY, device="cpu", resume=True, print_fn=lines.append)
    assert [line.split("]")[1].split()[0] for line in lines if line.startswith("[")] == ["save"]


def test_existing_work_needs_resume(created, portrait):
    out, _, _ = created
    with pytest.raises(PerseError, match="exists: resume to continue it"):
        create_avatar(portrait, out, quality=TINY, device="cpu", print_fn=lambda s: None)


def test_no_face_is_a_clear_error_and_writes_no_avatar(tmp_path):
    gray = tmp_path / "wall.png"
    imageio.imwrite(gray, np.full((256, 256, 3), 128, np.uint8))
    with pytest.raises(PerseError, match="no face"):
        create_avatar(gray, tmp_path / "x.perse", quality=TINY, device="cpu", print_fn=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall.png"]  # no avatar, no work folder


def test_a_mistyped_portrait_path_fails_before_any_stage_starts(tmp_path):
    lines = []
    for path, message in ((tmp_path / "typo.png", "image not found"), (tmp_path, "is not a file")):
        with pytest.raises(PerseError, match=message):
            create_avatar(path, tmp_path / "x.perse", quality=TINY, device="cpu", print_fn=lines.append)
    assert lines == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [(b"hello, this is text", "not .*image|cannot read|unreadable"),
                                              (None, "too small")])
def test_refused_portraits_leave_no_work_folder(tmp_path, content, message):
    photo = tmp_path / "photo.png"
    if content is None:  # a real face, far too small to fit (20 px between the eye corners)
        Image.fromarray(skimage.data.astronaut()[:300, 90:360]).resize((90, 100), Image.Resampling.BICUBIC).save(photo)
    else:
        photo.write_bytes(content)
    with pytest.raises(PerseError, match=message):
        create_avatar(photo, tmp_path / "x.perse", quality=TINY, device="cpu", print_fn=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
    # a work folder that was there before (the user's) is left alone, even when empty
    (tmp_path / "mine").mkdir()
    with pytest.raises(PerseError):
        create_avatar(photo, tmp_path / "x.perse", quality=TINY, device="cpu", work=tmp_path / "mine",
                      print_fn=lambda s: None)
    assert (tmp_path / "mine").is_dir()


def test_cancel_before_any_stage_leaves_no_work_folder(tmp_path, portrait):
    with pytest.raises(KeyboardInterrupt, match="before detect"):
        create_avatar(portrait, tmp_path / "x.perse", quality=TINY, device="cpu", print_fn=lambda s: None,
                      cancel=lambda: True)
    assert not (tmp_path / "x.perse.work").exists()


def test_a_stage_that_stops_leaves_its_keeps_and_not_its_outputs(tmp_path):
    """The driver removes what an unfinished stage wrote, except the partial work it resumes from."""
    class HalfDone(Stage):
        name, outputs, keeps = "fit", ("fit.json", "frames"), ("fit.ckpt",)

        def run(self, ctx):
            (ctx.work / "frames").mkdir()
            (ctx.work / "frames" / "0.png").write_bytes(b"png")
            (ctx.work / "fit.json").write_text("{")
            (ctx.work / "fit.ckpt").write_bytes(b"state")
            raise KeyboardInterrupt("cancelled inside fit")

    (tmp_path / "portrait.png").write_bytes(b"png")  # a finished earlier stage's output
    log = StageLog(tmp_path, STAGES, TINY.expected_s, print_fn=lambda s: None)
    with pytest.raises(KeyboardInterrupt, match="inside fit"):
        run_stage(HalfDone(), SimpleNamespace(work=tmp_path, log=log))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.ckpt", "portrait.png"] and not log.done


def test_cancel_inside_a_stage_keeps_only_what_resume_needs(tmp_path, portrait):
    """Cancelled while rendering the dataset: the finished stages and the log, no partial dataset.
    Cancelled inside training: also the dataset and the checkpoint, no trained avatar. Resumed: training
    continues from the checkpoint and the avatar is written."""
    out, work = tmp_path / "x.perse", tmp_path / "x.perse.work"
    finished = ["fit.json", "hair_layer.npz", "portrait.png", "stages.json", "texture.png", "texture_observed.png"]

    def contents():
        return sorted(p.name for p in work.iterdir())

    def rendering_frames():  # true once the dataset stage has written a few frames
        images = work / "dataset.partial" / "images"
        return images.is_dir() and len(list(images.iterdir())) >= 4

    with pytest.raises(KeyboardInterrupt, match="while rendering the dataset"):
        create_avatar(portrait, out, quality=TINY, device="cpu", print_fn=lambda s: None, cancel=rendering_frames)
    assert contents() == finished
    assert list(json.loads((work / "stages.json").read_text())) == ["detect", "fit", "texture"]

    polls = []

    def in_training():  # lets the train stage start, then stops it after its third step
        if (work / "dataset").is_dir():
            polls.append(1)
        return len(polls) > 3

    with pytest.raises(KeyboardInterrupt, match="training interrupted at step 3"):
        create_avatar(portrait, out, quality=TINY, device="cpu", resume=True, print_fn=lambda s: None,
                      cancel=in_training)
    assert contents() == sorted(finished + ["dataset", "train.ckpt"])
    assert not out.exists()

    lines = []
    create_avatar(portrait, out, quality=TINY, device="cpu", resume=True, print_fn=lines.append)
    assert [line.split("]")[1].split()[0] for line in lines if line.startswith("[")] == ["train", "evaluate", "save"]
    assert "      resuming training at step 3" in lines
    assert list(json.loads((work / "stages.json").read_text())) == list(STAGES)
    assert contents() == sorted(finished + ["dataset", "evaluation.json", "trained.perse"])
    assert read_avatar_meta(out)["training"]["steps"] == TINY.cpu_steps


# --------------------------------------------------------------------------------------------------
# Very large images
# --------------------------------------------------------------------------------------------------
def png_header(width: int, height: int) -> bytes:
    """A PNG file that is only a header (IHDR + IEND): claims width x height RGB, holds no pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IEND", b"")


def test_square_crop_can_be_limited_around_the_face():
    face = np.array([[300.0, 100.0], [340.0, 140.0]])
    assert square_crop_box(face, 1000, 400, max_side=100) == (270, 70, 100)
    assert square_crop_box(face, 1000, 400, max_side=5000) == (120, 0, 400)


@pytest.mark.parametrize("side", [30000, 12000])
def test_huge_image_headers_are_refused_before_decoding(tmp_path, side):
    path = tmp_path / f"huge{side}.png"
    path.write_bytes(png_header(side, side))   # 900 MP / 144 MP claimed; decoding would need GBs
    out = tmp_path / "huge.perse"
    with pytest.raises(PerseError, match="120 megapixels|120 MP limit") as info:
        create_avatar(path, out, quality=TINY, device="cpu", print_fn=lambda s: None)
    assert "\n" not in str(info.value) and "downscale" in str(info.value)
    assert not out.exists()


def test_very_large_portrait_is_cropped_and_resized_before_texturing(tmp_path):
    """A 6000 x 4000 photo (the astronaut upscaled to 4000 px): detection runs on a downscaled copy, the
    square crop is resized to PORTRAIT_MAX_SIDE before fitting and texturing. Stopped after the texture
    stage (the stages after it only see the 1024 px portrait, like any other)."""
    from PIL import Image

    from perse.create.stages import PORTRAIT_MAX_SIDE

    big = Image.fromarray(skimage.data.astronaut()).resize((4000, 4000), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (6000, 4000), (90, 90, 100))
    canvas.paste(big, (1200, 0))
    photo = tmp_path / "big.jpg"
    canvas.save(photo, quality=90)
    out = tmp_path / "big.perse"
    work = tmp_path / "big.perse.work"

    def texture_done():
        stages = work / "stages.json"
        return stages.exists() and "texture" in json.loads(stages.read_text())

    lines = []
    with pytest.raises(KeyboardInterrupt, match="before dataset"):
        create_avatar(photo, out, quality=TINY, device="cpu", print_fn=lines.append, cancel=texture_done)
    stages = json.loads((work / "stages.json").read_text())
    x0, y0, side = stages["detect"]["crop"]
    assert side == 4000 and y0 == 0 and 951 <= x0 <= 1400         # centred on the face, inside the photo
    assert stages["detect"]["size"] == PORTRAIT_MAX_SIDE
    assert any(f"resized to {PORTRAIT_MAX_SIDE} px" in line for line in lines)
    assert imageio.imread(work / "portrait.png").shape == (PORTRAIT_MAX_SIDE, PORTRAIT_MAX_SIDE, 3)
    fit = json.loads((work / "fit.json").read_text())
    assert fit["camera"]["width"] == PORTRAIT_MAX_SIDE and fit["mean_error_iod"] < 0.02
    assert imageio.imread(work / "texture.png").shape == (TINY.texture_size, TINY.texture_size, 3)
    assert not out.exists()


def test_train_config_follows_the_quality_preset():
    from perse.create.quality import QUALITIES
    from perse.train.trainer import TrainConfig

    draft = QUALITIES["draft"].train_config("cpu", "cpu", 3)
    assert (draft.steps, draft.num_gaussians, draft.backend, draft.seed) == (2250, 12000, "cpu", 3)
    assert draft.lr["codes"] == QUALITIES["draft"].code_lr != TrainConfig().lr["codes"]
    assert draft.lr["position"] == TrainConfig().lr["position"]
    assert draft.densify.stop_step == int(2250 * 2 / 3)
    standard = QUALITIES["standard"].train_config("cuda", "gsplat", 0)
    assert standard.steps == 15000 and standard.lr["codes"] == TrainConfig().lr["codes"]
