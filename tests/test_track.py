"""perse.track: photo loading, MediaPipe landmarks, head-model fitting and `track_command`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from perse.errors import PerseError
from perse.head import load_builtin_head
from perse.head.model import HeadParams
from perse.render.camera import Camera, orbit_camera
from perse.cli.track import track_command
from perse.track import draw_fit_overlay
from perse.track.fit import HeadFitter, fit_head
from perse.track.image_io import detection_image, load_image
from perse.track.landmarks import LandmarkDetector, detect_largest_face

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def head():
    return load_builtin_head()


@pytest.fixture(scope="module")
def detector():
    with LandmarkDetector(static_image_mode=True) as d:
        yield d


@pytest.fixture(scope="module")
def astro_detection(astronaut, detector):
    return detect_largest_face(astronaut, "astronaut", detector=detector)


@pytest.fixture(scope="module")
def astro_fit(head, astro_detection):
    return fit_head(head, astro_detection.face.points, (512, 512))


def _save(path, image: np.ndarray, **kwargs) -> str:
    Image.fromarray(image).save(path, **kwargs)
    return str(path)


# --------------------------------------------------------------------------------------------------
# Detection and fit on the real portrait
# --------------------------------------------------------------------------------------------------
def test_astronaut_detection(astro_detection):
    face = astro_detection.face
    assert astro_detection.num_faces == 1
    assert face.points.shape == (478, 2) and face.z.shape == (478,)
    assert 55 < face.eye_corner_distance < 67  # ~61 px in this 512x512 portrait
    x0, y0, x1, y1 = face.bbox
    assert 150 < x0 < x1 < 320 and 50 < y0 < y1 < 220  # the face is in the upper middle
    # Subject's right eye corner (33) appears on the image's left.
    assert face.points[33, 0] < face.points[263, 0]


def test_astronaut_fit_reaches_target(head, astro_detection, astro_fit):
    fit = astro_fit
    assert fit.mean_error_iod <= 0.02  # the target: 2% of the inter-ocular distance
    iod = astro_detection.face.eye_corner_distance
    assert fit.mean_error_px == pytest.approx(fit.mean_error_iod * iod, rel=1e-6)
    assert fit.reprojection_px.shape == (478,)
    assert float(fit.reprojection_px.mean()) == pytest.approx(fit.mean_error_px, rel=1e-5)
    # The result is self-consistent: the full model + camera reproduce the fitted landmarks.
    with torch.no_grad():
        uv = fit.camera.project(head(fit.params).landmarks[0])
    assert torch.allclose(uv, fit.projected_px, atol=1e-2)
    # A plausible head: bounded pose, roughly frontal, plausible focal length for a 512 px photo.
    assert float(fit.params.global_rot.abs().max()) < 0.5
    assert 300 < fit.focal < 5000
    assert float(fit.params.identity.abs().max()) <= 3.0 + 1e-6
    assert float(fit.params.expression.min()) >= 0.0 and float(fit.params.expression.max()) <= 1.0


def test_several_faces_takes_the_largest(astronaut, detector):
    crop = astronaut[20:300, 100:380]
    small = np.asarray(Image.fromarray(crop).resize((224, 224)))
    canvas = np.full((280, 504, 3), 200, np.uint8)
    canvas[:, :280] = crop
    canvas[:224, 280:] = small
    det = detect_largest_face(canvas, "two.png", detector=detector)
    assert det.num_faces == 2
    assert det.face.points[:, 0].mean() < 280  # the larger (left) face
    assert det.face.eye_corner_distance > 55


def test_large_image_is_downscaled_for_detection(astronaut, astro_detection, detector):
    small = detection_image(astronaut, max_side=256)
    assert small.pixels.shape == (256, 256, 3) and small.scale == (2.0, 2.0)
    det = detect_largest_face(astronaut, "astronaut", detector=detector, max_side=384)
    # Landmarks mapped back to full resolution agree with full-resolution detection.
    diff = np.linalg.norm(det.face.points - astro_detection.face.points, axis=1)
    assert np.median(diff) < 1.5


# --------------------------------------------------------------------------------------------------
# Closed loop on synthetic landmarks
# --------------------------------------------------------------------------------------------------
def _synthetic(head, params: HeadParams, camera: Camera, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    with torch.no_grad():
        uv = camera.project(head(params).landmarks[0]).numpy().astype(np.float64)
    return uv + np.random.default_rng(seed).normal(scale=noise, size=uv.shape)


def test_closed_loop_recovers_jaw_and_pose(head):
    g = torch.Generator().manual_seed(3)
    expr = torch.zeros(1, head.num_expression)
    names = head.expression_names
    expr[0, names.index("mouthSmileLeft")] = 0.6
    expr[0, names.index("eyeBlinkRight")] = 0.5
    truth = HeadParams(identity=torch.randn(1, head.num_shape, generator=g) * 0.5, expression=expr,
                       global_rot=torch.tensor([[0.1, -0.25, 0.05]]), jaw_rot=torch.tensor([[0.22, 0.0, 0.0]]))
    camera = orbit_camera(0.0, 0.0, distance=0.7, fov_y_deg=22.0, width=640, height=480)
    obs = _synthetic(head, truth, camera, noise=0.2)
    fit = fit_head(head, obs, (640, 480))
    assert abs(float(fit.params.jaw_rot[0, 0]) - 0.22) < 0.05
    assert fit.mean_error_px < 0.5
    assert torch.allclose(fit.params.global_rot, truth.global_rot, atol=0.05)
    assert float(fit.params.expression[0, names.index("mouthSmileLeft")]) > 0.3
    # Focal length and distance trade off for a face; their ratio (the face's image scale) does not.
    assert fit.focal / float(fit.camera.world_to_cam[2, 3]) == pytest.approx(
        float(camera.K[0, 0]) / 0.7, rel=0.1)


def test_per_frame_fit_with_fixed_shape_and_warm_start(head):
    camera = orbit_camera(0.0, 0.0, distance=0.6, fov_y_deg=25.0, width=640, height=480)
    shape = torch.randn(1, head.num_shape, generator=torch.Generator().manual_seed(5)) * 0.5
    first = fit_head(head, _synthetic(head, HeadParams(identity=shape), camera, 0.2), (640, 480))
    prev = first
    for k in range(1, 6):  # a short "video": the head turns and the jaw opens
        truth = HeadParams(identity=shape, global_rot=torch.tensor([[0.0, 0.05 * k, 0.0]]),
                           jaw_rot=torch.tensor([[0.04 * k, 0.0, 0.0]]))
        prev = fit_head(head, _synthetic(head, truth, camera, 0.2, seed=k), (640, 480), init=prev,
                        fixed_shape=first.params.identity, fixed_focal=first.focal)
        assert torch.equal(prev.params.identity, first.params.identity)  # identity is kept
        assert prev.focal == pytest.approx(first.focal, rel=1e-5)
        assert prev.iterations <= 3
        assert prev.mean_error_px < 1.0
    assert abs(float(prev.params.jaw_rot[0, 0]) - 0.2) < 0.05
    assert abs(float(prev.params.global_rot[0, 1]) - 0.25) < 0.05


def test_fitter_rejects_wrong_landmark_count(head):
    with pytest.raises(ValueError, match="478"):
        HeadFitter(head).fit(np.zeros((468, 2)), (512, 512))


# --------------------------------------------------------------------------------------------------
# Bad input and image variants
# --------------------------------------------------------------------------------------------------
def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n")
    with pytest.raises(PerseError, match="notes.jpg") as err:
        load_image(path)
    assert "\n" not in str(err.value)
    with pytest.raises(PerseError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_tiny_and_huge_images_are_refused(tmp_path, monkeypatch):
    tiny = _save(tmp_path / "tiny.png", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(PerseError, match="at least 32"):
        load_image(tiny)
    import perse.track.image_io as image_io

    monkeypatch.setattr(image_io, "MAX_PIXELS", 100_000)  # the check reads the header, not the pixels
    big = _save(tmp_path / "big.png", np.zeros((400, 400, 3), np.uint8))
    with pytest.raises(PerseError, match="megapixels"):
        load_image(big)


def test_no_face(tmp_path, detector):
    path = _save(tmp_path / "gray.png", np.full((256, 256, 3), 128, np.uint8))
    with pytest.raises(PerseError, match="no face found in .*gray.png"):
        detect_largest_face(load_image(path), path, detector=detector)


def test_face_too_small(astronaut, detector):
    small = np.asarray(Image.fromarray(astronaut).resize((171, 171), Image.Resampling.LANCZOS))
    with pytest.raises(PerseError, match="at least 40 px"):
        detect_largest_face(small, "small.png", detector=detector)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_image_modes_load_as_rgb_and_still_track(tmp_path, astronaut, detector, mode):
    im = Image.fromarray(astronaut)
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(200)  # semi-transparent: composited over white
    else:
        im = im.convert(mode)
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    im.save(path)
    rgb = load_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    if mode == "L":
        assert np.array_equal(rgb[..., 0], rgb[..., 2])
    if mode == "RGBA":  # alpha 200/255 over white brightens the photo
        assert rgb.astype(float).mean() > astronaut.astype(float).mean() + 10
    det = detect_largest_face(rgb, str(path), detector=detector)
    assert 55 < det.face.eye_corner_distance < 67


def test_exif_orientation_is_applied(tmp_path, astronaut, astro_detection, detector):
    # Store the pixels turned 90 degrees clockwise with Orientation=6 ("rotate 90 CW to view"):
    # a viewer, and our loader, must turn them back to the upright portrait.
    sideways = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=exif, quality=95)
    rgb = load_image(path)
    assert rgb.shape == (512, 512, 3)
    assert np.abs(rgb.astype(float) - astronaut.astype(float)).mean() < 6  # upright again (JPEG noise)
    det = detect_largest_face(rgb, str(path), detector=detector)
    assert np.median(np.linalg.norm(det.face.points - astro_detection.face.points, axis=1)) < 2.0


# --------------------------------------------------------------------------------------------------
# FLAME path (synthetic FLAME file: a head-sized ellipsoid, so only the pipeline is checked)
# --------------------------------------------------------------------------------------------------
def test_flame_with_embedding_fits(tmp_path, astro_detection):
    from flame_fixtures import write_synthetic_embedding, write_synthetic_flame

    from perse.head.flame import load_flame

    write_synthetic_flame(tmp_path / "generic_model.pkl")
    emb = write_synthetic_embedding(tmp_path / "mediapipe_landmark_embedding.npz")
    model = load_flame(tmp_path / "generic_model.pkl", tmp_path / "mediapipe_landmark_embedding.npz")
    points = astro_detection.face.points
    rigid = fit_head(model, points, (512, 512), iterations=0)  # the rigid pre-alignment only
    full = fit_head(model, points, (512, 512))
    assert full.reprojection_px.shape == (105,)
    assert torch.equal(full.landmark_ids, torch.as_tensor(emb["landmark_indices"]))
    assert math.isfinite(full.mean_error_px)
    assert full.mean_error_px < rigid.mean_error_px
    assert full.params.identity.shape == (1, 300) and full.params.expression.shape == (1, 100)
    assert float(full.params.eye_left_rot.abs().max()) == 0.0  # no iris points on eyeballs here


def test_flame_without_embedding_is_refused(tmp_path, astronaut):
    from flame_fixtures import write_synthetic_flame

    write_synthetic_flame(tmp_path / "generic_model.pkl")
    path = _save(tmp_path / "astro.png", astronaut)
    with pytest.raises(PerseError, match="embedding"):
        track_command(path, tmp_path / "p.json", flame=tmp_path / "generic_model.pkl")
    assert not (tmp_path / "p.json").exists()


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------
def test_track_command_writes_params_and_overlay(tmp_path, astronaut, head, capsys):
    path = _save(tmp_path / "astro.png", astronaut)
    out, overlay = tmp_path / "params.json", tmp_path / "overlay.png"
    result = track_command(path, out, overlay=overlay)
    printed = capsys.readouterr().out
    assert "px" in printed and "% of the inter-ocular distance" in printed
    data = json.loads(out.read_text())
    assert data["image_size"] == [512, 512] and data["num_faces"] == 1
    assert data["mean_error_iod"] <= 0.02 and data["mean_error_px"] == result["mean_error_px"]
    params, camera = HeadParams.from_dict(data["params"]), Camera.from_dict(data["camera"])
    with torch.no_grad():
        uv = camera.project(head(params).landmarks[0]).numpy()
    detected = np.asarray(data["landmarks_px"])
    assert np.linalg.norm(uv - detected, axis=1).mean() == pytest.approx(data["mean_error_px"], abs=0.01)
    img = np.asarray(Image.open(overlay))
    f = img.shape[0] // 512
    assert img.shape == (512 * f, 512 * f, 3) and f >= 1
    # The wireframe is drawn on the face and nowhere far from it.
    base = np.asarray(Image.fromarray(astronaut).resize((512 * f, 512 * f), Image.Resampling.BICUBIC))
    changed = np.abs(img.astype(int) - base.astype(int)).sum(2) > 30
    ys, xs = np.nonzero(changed)
    assert changed.mean() > 0.01
    assert 150 * f < np.median(xs) < 320 * f and 50 * f < np.median(ys) < 220 * f
    assert changed[: 30 * f].sum() == 0 and changed[:, : 100 * f].sum() == 0


def test_overlay_matches_image_size_for_large_faces(astronaut, head, detector):
    big = np.asarray(Image.fromarray(astronaut[40:230, 140:330]).resize((760, 760)))
    det = detect_largest_face(big, "big", detector=detector)
    fit = fit_head(head, det.face.points, (760, 760))
    assert fit.mean_error_iod <= 0.02
    out = draw_fit_overlay(big, head, fit, det.face.points)
    assert out.shape == big.shape  # eye distance > 240 px: no enlargement
