"""`perse create --editor diffusers:PATH`: portrait edits by a local inpainting pipeline.

The pipeline is a TINY randomly initialised StableDiffusionInpaintPipeline built and saved here (its
CLIP tokenizer from a vocabulary written here too): it paints noise, not hair, but it goes through the
real loading, prompting, masking, projection and dataset paths. Every test runs with HF_HUB_OFFLINE=1
and with sockets refused, so a download attempt would fail the test.
"""

import json
import socket

import imageio.v2 as imageio
import numpy as np
import pytest
import skimage.data

from perse.create.edit_masks import category_region_mask, portrait_edit_masks, portrait_label_image
from perse.create.editors import (EDIT_PROMPTS, BuiltinEditor, DiffusersEditor, EditorSpec, blend_inside,
                                  edit_file, edited_variants, feather_alpha, parse_editor_spec, variant_seed,
                                  working_size)
from perse.errors import PerseError
from perse.synth.variants import CATEGORIES, category_by_name

from test_create import TINY


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No network: HF_HUB_OFFLINE=1 and every socket connection raises."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


def write_clip_tokenizer_files(folder):
    """A minimal CLIP BPE vocabulary: the special tokens and single letters (no merges)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["<|startoftext|>", "<|endoftext|>"] + list(letters) + [c + "</w>" for c in letters]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder / "vocab.json", folder / "merges.txt", len(vocab)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    """Save a tiny random inpainting pipeline (UNet with 9 input channels) and return its folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_inpaint")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=32, in_channels=9, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, norm_num_groups=4, cross_attention_dim=16, attention_head_dim=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, sample_size=64)
    vocab, merges, n_vocab = write_clip_tokenizer_files(root / "tokenizer_src")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=n_vocab, hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=2, num_attention_heads=2,
                                                max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                                pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    path = root / "pipeline"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    imageio.imwrite(path, skimage.data.astronaut())
    return path


# --------------------------------------------------------------------------------------------------
# Specs and small functions
# --------------------------------------------------------------------------------------------------
def one_line_error(fn, match):
    with pytest.raises(PerseError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_bad_editor_specs_are_one_line_errors(tmp_path, tiny_pipeline, monkeypatch):
    assert parse_editor_spec("builtin") == EditorSpec("builtin") and str(parse_editor_spec(None)) == "builtin"
    one_line_error(lambda: parse_editor_spec("stable-diffusion"), "unknown attribute editor 'stable-diffusion'.*builtin")
    one_line_error(lambda: parse_editor_spec("diffusers:"), "needs a folder")
    one_line_error(lambda: parse_editor_spec(f"diffusers:{tmp_path / 'nowhere'}"), "not found")
    (tmp_path / "empty").mkdir()
    one_line_error(lambda: parse_editor_spec(f"diffusers:{tmp_path / 'empty'}"), "no model_index.json")
    txt2img = tmp_path / "txt2img"
    txt2img.mkdir()
    (txt2img / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                          "unet": ["diffusers", "UNet2DConditionModel"]}))
    one_line_error(lambda: parse_editor_spec(f"diffusers:{txt2img}"), "StableDiffusionPipeline.*not an inpainting")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    one_line_error(lambda: parse_editor_spec(f"diffusers:{tmp_path / 'broken'}"), "unreadable")

    spec = parse_editor_spec(f"diffusers:{tiny_pipeline}")
    assert spec.kind == "diffusers" and spec.path == tiny_pipeline.resolve()
    assert str(spec) == f"diffusers:{tiny_pipeline.resolve()}"
    import perse.create.editors as editors

    real = editors.importlib.util.find_spec
    monkeypatch.setattr(editors.importlib.util, "find_spec", lambda n: None if n == "transformers" else real(n))
    one_line_error(lambda: parse_editor_spec(f"diffusers:{tiny_pipeline}"), "needs the 'transformers' package")


def test_cli_refuses_a_bad_editor_before_any_work(tmp_path, portrait, capsys):
    from perse.cli import main

    out = tmp_path / "x.perse"
    assert main(["create", str(portrait), "--out", str(out), "--editor", "dall-e"]) == 2
    err = capsys.readouterr().err
    assert "unknown attribute editor 'dall-e'" in err and err.strip().endswith("(--editor)")
    assert not out.exists() and not (tmp_path / "x.perse.work").exists()


def test_prompts_seeds_and_sizes():
    pairs = edited_variants(CATEGORIES)
    refs = {(c.name, c.reference) for c in CATEGORIES}
    assert pairs and not refs & set(pairs)                       # the photo itself is never edited
    assert ("hair", "blonde") in pairs and EDIT_PROMPTS[("hair", "blonde")] == "a photo of a person with blonde hair"
    assert "round glasses" in EDIT_PROMPTS[("glasses", "round")]
    assert variant_seed(0, "hair", "blonde") == 474894255            # a CRC of the names: the same in every process
    assert len({variant_seed(0, c, v) for c, v in pairs}) == len(pairs)
    assert variant_seed(1, "hair", "blonde") != variant_seed(0, "hair", "blonde")
    assert working_size(512, 512, 512) == (512, 512)
    assert working_size(1000, 600, 512) == (512, 304)           # multiples of 8
    assert working_size(37, 37, 64) == (64, 64)
    assert BuiltinEditor().variants(CATEGORIES) == []


def test_blend_is_exact_outside_the_mask():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), bool)
    mask[10:30, 15:40] = True
    alpha = feather_alpha(mask, 4.0)
    assert alpha[~mask].max() == 0.0 and alpha[20, 27] == 1.0 and 0 < alpha[10, 27] < 1
    out = blend_inside(a, b, alpha)
    assert np.array_equal(out[~mask], a[~mask])
    assert np.array_equal(out[alpha == 1], b[alpha == 1])


# --------------------------------------------------------------------------------------------------
# The diffusers editor on the astronaut
# --------------------------------------------------------------------------------------------------
def test_edits_change_only_the_mask_and_differ_per_variant(tiny_pipeline):
    image = skimage.data.astronaut()[::4, ::4].copy()           # 128 x 128
    mask = np.zeros(image.shape[:2], bool)
    mask[20:70, 30:100] = True                                   # the hair and forehead area
    editor = DiffusersEditor(tiny_pipeline, device="cpu", steps=2)
    assert editor.resolution == 64                               # the tiny pipeline's native size
    steps = []
    blonde = editor.edit(image, mask, "hair", "blonde", seed=variant_seed(0, "hair", "blonde"),
                         on_step=lambda i, n: steps.append((i, n)))
    assert steps == [(1, 2), (2, 2)]
    red = editor.edit(image, mask, "hair", "red", seed=variant_seed(0, "hair", "red"))
    again = editor.edit(image, mask, "hair", "blonde", seed=variant_seed(0, "hair", "blonde"))
    for edited in (blonde, red):
        assert edited.shape == image.shape and edited.dtype == np.uint8
        diff = np.abs(edited.astype(int) - image.astype(int))
        assert diff[~mask].max() <= 1                           # outside: the input within 1/255
        assert diff[mask].mean() > 10                           # inside: repainted
    assert np.abs(blonde.astype(int) - red.astype(int))[mask].mean() > 3
    assert np.array_equal(blonde, again)                         # deterministic per variant seed
    with pytest.raises(KeyboardInterrupt, match="hair/blonde"):
        editor.edit(image, mask, "hair", "blonde", cancel=lambda: True)
    one_line_error(lambda: editor.edit(image, mask, "hair", "brown"), "no edit prompt")


@pytest.fixture(scope="module")
def created_with_editor(tiny_pipeline, portrait, tmp_path_factory):
    """`create_avatar` at the tiny quality with the diffusers editor (2 steps, hair and glasses only)."""
    from perse.create.pipeline import create_avatar

    out = tmp_path_factory.mktemp("created_editor") / "astro.perse"
    editor = DiffusersEditor(tiny_pipeline, device="cpu", steps=2, categories=["hair", "glasses"])
    lines = []
    summary = create_avatar(portrait, out, quality=TINY, device="cpu", print_fn=lines.append, editor=editor)
    return out, summary, lines, editor


def test_create_with_the_diffusers_editor_makes_an_avatar(created_with_editor):
    from perse.avatar import read_avatar_meta

    out, summary, lines, editor = created_with_editor
    work = out.with_name(out.name + ".work")
    stages = json.loads((work / "stages.json").read_text())
    pairs = editor.variants(CATEGORIES)
    assert len(pairs) == 4 + 3                                   # 4 hair colours, 3 glasses
    assert stages["dataset"]["editor"] == str(editor.spec) and summary["editor"] == str(editor.spec)
    assert sorted(stages["dataset"]["edited"]) == sorted(f"{c}/{v}" for c, v in pairs)
    for cat, var in pairs:
        assert edit_file(work / "edits", cat, var).exists() and edit_file(work / "edits", cat, var, "texture").exists()
    data = json.loads((work / "dataset" / "dataset.json").read_text())
    listed = {(e["category"], e["variant"]) for e in data["generator"]["variant_textures"]}
    assert listed == set(pairs)
    meta = read_avatar_meta(out)
    assert meta["training"]["create"]["editor"] == str(editor.spec)
    assert any(line.startswith("      editor diffusers:") for line in lines)


def test_edited_portraits_change_only_inside_the_category_mask(created_with_editor):
    from perse.create.stages import fit_from_json as _fit_from_json
    from perse.head.registry import load_head_model

    out, _, _, editor = created_with_editor
    work = out.with_name(out.name + ".work")
    head = load_head_model(None, None)
    fit = _fit_from_json(json.loads((work / "fit.json").read_text()))
    photo = imageio.imread(work / "portrait.png")[..., :3]
    labels = portrait_label_image(head, fit)
    assert labels.shape == photo.shape[:2] and (labels > 0).mean() > 0.03   # the head in the photo
    masks = portrait_edit_masks(head, fit, photo, [category_by_name("hair"), category_by_name("glasses")])
    edits = {}
    for cat, var in editor.variants(CATEGORIES):
        edited = imageio.imread(edit_file(work / "edits", cat, var))[..., :3]
        mask = masks[cat]
        diff = np.abs(edited.astype(int) - photo.astype(int))
        assert diff[~mask].max() <= 1, f"{cat}/{var} changed outside its mask"
        assert diff[mask].mean() > 5, f"{cat}/{var} did not change inside its mask"
        edits[(cat, var)] = edited
    assert not np.array_equal(edits[("hair", "blonde")], edits[("hair", "red")])
    # The glasses mask covers the eyes, the hair mask the scalp: different areas changed.
    m_hair, m_glasses = masks["hair"], masks["glasses"]
    assert (m_hair & ~m_glasses).any() and (m_glasses & ~m_hair).any()
    # The astronaut's hair stands out of the head: the hair mask takes it, the head regions alone do not.
    head_only = category_region_mask(labels, head.region_names, category_by_name("hair"))
    off_head = m_hair & ~head_only
    assert off_head.sum() > 1000 and (labels[off_head] == 0).all()
    assert not (m_hair & (np.arange(512)[:, None] > 260)).any()    # nothing of the suit below the neck


def test_variant_textures_differ_inside_the_category_region(created_with_editor):
    from perse.head.registry import load_head_model
    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.variants import reference_look

    out, _, _, editor = created_with_editor
    work = out.with_name(out.name + ".work")
    base = imageio.imread(work / "texture.png")[..., :3]
    head = load_head_model(None, None)
    textures = {p: imageio.imread(edit_file(work / "edits", *p, "texture"))[..., :3]
                for p in editor.variants(CATEGORIES)}
    fr = FrameRenderer(head, CATEGORIES, texture_size=base.shape[0], base_texture=base, variant_textures=textures)
    try:
        for (cat, var), tex in textures.items():
            w = fr._region_weight(cat)
            diff = np.abs(tex.astype(int) - base.astype(int)).sum(axis=2)
            assert diff[w > 0.99].mean() > 5, f"{cat}/{var} texture equals the photo's in its region"
            look = {**reference_look(CATEGORIES), cat: var}
            used = fr.texture(look).astype(int)
            # The dataset's texture: the edit inside the category's region, the photo's texture outside.
            assert np.abs(used - tex)[w > 0.999].max() <= 1
            assert np.abs(used - fr.painter.paint(reference_look(CATEGORIES)))[w < 1e-3].max() <= 1
        # Two categories at once: each edit lands in its own region.
        both = fr.texture({**reference_look(CATEGORIES), "hair": "blonde", "glasses": "round"}).astype(int)
        only_hair = (fr._region_weight("hair") > 0.999) & (fr._region_weight("glasses") < 1e-3)
        assert np.abs(both - textures[("hair", "blonde")])[only_hair].max() <= 1
        assert fr.texture(reference_look(CATEGORIES)) is fr.painter.paint(reference_look(CATEGORIES))
    finally:
        fr.close()


def test_resume_reuses_the_edits(created_with_editor, portrait):
    from perse.create.pipeline import create_avatar

    out, _, _, editor = created_with_editor
    lines = []
    create_avatar(portrait, out, quality=TINY, device="cpu", resume=True, print_fn=lines.append, editor=editor)
    assert [line.split("]")[1].split()[0] for line in lines if line.startswith("[")] == ["save"]
    one_line_error(lambda: create_avatar(portrait, out, quality=TINY, device="cpu", resume=True,
                                         print_fn=lines.append), "made with the editor diffusers:")
