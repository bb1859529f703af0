"""The outside-in report on the bundled default avatar against the astronaut portrait it was made from,
re-framed in several ways (perse.eval.report, perse eval --portrait)."""

import contextlib
import io
import json

import numpy as np
import pytest

from perse.avatar.io import load_avatar
from perse.errors import PerseError
from perse.eval import identity, regions, report, views
from perse.paths import resolve_avatar_path

SIZE = 256


@pytest.fixture(scope="module")
def avatar():
    return load_avatar(resolve_avatar_path("default"))


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()


@pytest.fixture(scope="module")
def astronaut_png(astronaut, tmp_path_factory):
    import imageio.v2 as imageio

    path = tmp_path_factory.mktemp("eval") / "astronaut.png"
    imageio.imwrite(path, astronaut)
    return path


@pytest.fixture(scope="module")
def cli_report(astronaut_png):
    """`perse eval default --portrait astronaut.png --json` at 256 px, parsed."""
    from perse.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", "default", "--portrait", str(astronaut_png), "--size", str(SIZE), "--json",
                     "--backend", "cpu"]) == 0
    return json.loads(out.getvalue())


def reframings(image):
    """The astronaut mirrored, cropped to 3/4, padded into a larger frame, and at other sizes."""
    import cv2

    h, w = image.shape[:2]
    padded = np.full((int(h * 1.5), int(w * 1.3), 3), 190, np.uint8)
    padded[h // 4:h // 4 + h, w // 10:w // 10 + w] = image
    yield "mirrored", image[:, ::-1]
    yield "cropped 3/4", image[: 3 * h // 4, w // 8: w // 8 + 3 * w // 4]
    yield "padded", padded
    yield "small", cv2.resize(image, (w * 2 // 5, h * 2 // 5), interpolation=cv2.INTER_AREA)
    yield "large", cv2.resize(image, (w * 3 // 2, h * 3 // 2), interpolation=cv2.INTER_CUBIC)


def test_report_has_every_section(cli_report, avatar):
    assert cli_report["size"] == SIZE
    rows = cli_report["attributes"]
    assert len(rows) == sum(len(c.variants) - 1 for c in avatar.categories)
    for r in rows:
        assert r["inside_px_512"] >= 0 and 0 <= r["outside_fraction"] <= 1
        assert isinstance(r["visible"], bool) and isinstance(r["local"], bool)
    assert 0.5 < cli_report["silhouette"]["iou"] <= 1
    assert 0 <= cli_report["back_view"]["off_palette_fraction"] <= 1
    assert cli_report["back_view"]["hair_pixels"] > 1000 and cli_report["back_view"]["front_hair_pixels"] > 500


def test_strong_variants_are_seen_where_they_belong(cli_report):
    rows = {(r["category"], r["variant"]): r for r in cli_report["attributes"]}
    # variants that clearly change the default today: their own region sees it
    for key in (("hair", "black"), ("lips", "red"), ("glasses", "sunglasses"), ("hat", "beanie")):
        assert rows[key]["visible"], key
    for key in (("hair", "black"), ("hat", "cap"), ("hat", "beanie"), ("beard", "full")):
        assert rows[key]["solid"], key                 # an area, not a cloud of flecks


def test_identity_of_the_reference_view(cli_report):
    pytest.importorskip("dlib")
    ident = cli_report["identity"]
    assert set(ident) == {"reference", "yaw+20", "yaw-20"}
    assert all(d is not None and d < identity.SAME_PERSON for d in ident.values())


def test_table_lists_every_figure(cli_report):
    text = report.format_report(cli_report)
    for needle in ("identity distance", "IoU", "hair=black", "earrings=studs", "back view", "visible "):
        assert needle in text
    assert "skipped: identity distance needs dlib" in report.format_report(
        {**cli_report, "identity": {"error": "identity distance needs dlib: pip install ..."}})


def test_silhouette_iou_does_not_depend_on_the_framing(avatar, astronaut):
    from perse.eval.portrait import read_portrait

    base = report.silhouette_section(avatar, read_portrait(astronaut), SIZE, "cpu")["iou"]
    for name, image in reframings(astronaut):
        if name == "mirrored":   # a mirror image is another outline (the parting moves), not a reframing
            continue
        iou = report.silhouette_section(avatar, read_portrait(np.ascontiguousarray(image)), SIZE, "cpu")["iou"]
        assert abs(iou - base) < 0.03, (name, iou, base)


def test_identity_descriptor_finds_the_same_person(astronaut):
    pytest.importorskip("dlib")
    ref = identity.face_descriptor(astronaut)
    for name, image in reframings(astronaut):
        d = identity.identity_distance(ref, identity.face_descriptor(np.ascontiguousarray(image)))
        assert d is not None and d < identity.SAME_PERSON, (name, d)
    assert identity.face_descriptor(np.full((120, 120, 3), 128, np.uint8)) is None
    assert identity.identity_distance(ref, None) is None


def test_identity_without_the_extra_names_it(avatar, astronaut, monkeypatch):
    def missing():
        raise identity.MissingExtra(f"identity distance needs dlib: {identity.EXTRA_HINT}")

    monkeypatch.setattr(identity, "face_models", missing)
    section = report.identity_section(avatar, astronaut, SIZE, "cpu")
    assert "perse-studio[eval]" in section["error"]


def test_regions_sit_on_the_rendered_face(avatar):
    front = views.render_view(avatar, views.front_state(avatar), views.front_camera(avatar, SIZE))
    lm = report.render_landmarks(front, "the front render")
    r = regions.category_regions(lm, front.alpha > 0.5)
    at = lambda name, i: r[name].inside[int(lm[i, 1]), int(lm[i, 0])]  # noqa: E731
    assert at("lips", 13) and at("glasses", 33) and at("glasses", 263) and at("eyebrows", 105)
    assert at("beard", 152) and at("skin", 1) and not at("hair", 1) and not at("hat", 1)
    assert r["hat"].inside[: int(lm[10, 1])].any() and not r["hat"].inside[int(lm[13, 1]):].any()
    # A hat's rim comes down the sides beside the face (to the ears' line), never over the face.
    eyes_row = int(lm[[33, 263], 1].mean())
    assert r["hat"].inside[eyes_row].any() and not at("hat", 33) and not at("hat", 263)
    for region in r.values():
        assert (region.allowed | ~region.inside).all()  # inside is always allowed
    # The neck's faded end (touched, below the silhouette's alpha 0.5) is skin: the skin variants may
    # change it.
    faded = (front.alpha > 0.02) & (front.alpha <= 0.5)
    faded[: int(lm[152, 1])] = False
    assert faded.sum() > 50
    soft = regions.category_regions(lm, front.alpha > 0.5, covered=front.alpha > 0.02)
    assert soft["skin"].allowed[faded].all() and not r["skin"].allowed[faded].all()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, avatar):
    import imageio.v2 as imageio

    from perse.cli import main

    assert main(["eval", "default", "--portrait", str(tmp_path / "missing.jpg")]) == 2
    noise = (np.random.default_rng(0).uniform(0, 255, (200, 200, 3))).astype(np.uint8)
    imageio.imwrite(tmp_path / "noise.png", noise)
    assert main(["eval", "default", "--portrait", str(tmp_path / "noise.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("perse: error:") for line in err)
    assert "no face" in err[1]
    synthetic = load_avatar(resolve_avatar_path("default"))
    synthetic.meta = {k: v for k, v in synthetic.meta.items() if k != "reference_view"}
    with pytest.raises(PerseError, match="no reference view"):
        report.measure_avatar(synthetic, noise)
