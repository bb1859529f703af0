"""The portrait's own view in a dataset: photo eyes and mouth in its frames, the photo's teeth colour,
the iris size read from the photo."""

import numpy as np
import pytest

from perse.errors import PerseError
from perse.landmarks import EYE_LOWER_LID, EYE_UPPER_LID, LIPS_INNER
from perse.render.camera import orbit_camera
from perse.synth.teeth import photo_teeth_color
from perse.synth.reference import ReferenceView, feature_polygons, image_map, polygons_mask, with_photo_features


def ring(ids, centre, rx, ry):
    """Landmarks `ids` on an ellipse around `centre` (x, y) in pixels, in order."""
    t = np.linspace(0, 2 * np.pi, len(ids), endpoint=False)
    return {i: (centre[0] + rx * np.cos(a), centre[1] + ry * np.sin(a)) for i, a in zip(ids, t)}


def face_landmarks(scale: float = 1.0) -> np.ndarray:
    """(478, 2) landmarks whose eyes and inner lips are ellipses in a 64 x 64 image (times `scale`)."""
    lm = np.full((478, 2), 32.0)
    for side, cx in (("R", 20.0), ("L", 44.0)):
        lids = list(EYE_UPPER_LID[side]) + list(EYE_LOWER_LID[side])[1:-1][::-1]
        for i, p in ring(lids, (cx, 24.0), 6.0, 3.0).items():
            lm[i] = p
    for i, p in ring(LIPS_INNER, (32.0, 46.0), 10.0, 4.0).items():
        lm[i] = p
    return lm * scale


def test_feature_polygons_cover_the_eyes_and_the_mouth_only():
    mask = polygons_mask(feature_polygons(face_landmarks()), (64, 64))
    assert mask[24, 20] > 0.99 and mask[24, 44] > 0.99 and mask[46, 32] > 0.99
    assert mask[5, 5] == 0.0 and mask[35, 32] < 0.01   # forehead corner, nose


def test_frames_take_the_photos_eyes_and_mouth_where_the_head_covers_them():
    cam = orbit_camera(0.0, 0.0, 1.0, (0.0, 0.0, 0.0), 20.0, 128, 128)
    photo = np.zeros((128, 128, 3), np.uint8)
    photo[..., 0] = 250                                  # a red photo
    view = ReferenceView(cam, None, image=photo, landmarks=face_landmarks(2.0))
    frame_cam = cam.resized(64, 64)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 2] = 200                                   # a blue render...
    rgba[:, :32, 3] = 255                                # ...covering the left half only
    out = with_photo_features(rgba, view, frame_cam)
    assert out[24, 20, 0] > 240 and out[24, 20, 2] < 10     # right eye: photo
    assert out[24, 44, 0] == 0 and out[24, 44, 2] == 200    # left eye: not covered by the head, unchanged
    assert out[46, 28, 0] > 240                              # mouth, covered half: photo
    assert (out[5, 5] == rgba[5, 5]).all()                   # skin: the render
    assert (out[..., 3] == rgba[..., 3]).all()
    np.testing.assert_allclose(image_map(cam, frame_cam), [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-3)


def test_a_frame_without_a_photo_is_the_render():
    cam = orbit_camera(0.0, 0.0, 1.0, (0.0, 0.0, 0.0), 20.0, 64, 64)
    rgba = np.random.default_rng(0).integers(0, 255, (64, 64, 4), dtype=np.uint8)
    assert with_photo_features(rgba, ReferenceView(cam, None), cam) is rgba


def test_the_reference_view_refuses_what_it_cannot_use(builtin_head):
    params = builtin_head.zero_params()
    cam = orbit_camera(0.0, 0.0, 1.0, (0.0, 0.0, 0.0), 20.0, 64, 64)
    photo = np.zeros((64, 64, 3), np.uint8)
    ReferenceView(cam, params, photo, face_landmarks()).validate()
    with pytest.raises(PerseError, match="needs its landmarks"):
        ReferenceView(cam, params, photo).validate()
    with pytest.raises(PerseError, match="is 32x64 but its camera is 64x64"):
        ReferenceView(cam, params, photo[:, :32], face_landmarks()).validate()
    with pytest.raises(PerseError, match="square"):
        ReferenceView(orbit_camera(0.0, 0.0, 1.0, (0, 0, 0), 20.0, 64, 48), params).validate()
    bad = face_landmarks()
    bad[3] = np.nan
    with pytest.raises(PerseError, match="finite"):
        ReferenceView(cam, params, photo, bad).validate()
    with pytest.raises(PerseError, match="frame count"):
        ReferenceView(cam, params, frames=100).validate()


def mouth_photo(inside) -> np.ndarray:
    """A skin-coloured 64 x 64 photo whose inner-lip opening (face_landmarks) is filled with `inside`."""
    import cv2

    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (200, 150, 130)
    mask = np.zeros((64, 64), np.uint8)
    cv2.fillPoly(mask, [np.round(face_landmarks()[list(LIPS_INNER)]).astype(np.int32)], 1)
    img[mask.astype(bool)] = inside
    return img


def test_the_teeth_colour_comes_from_a_smile_and_not_from_a_dark_mouth():
    color = photo_teeth_color(mouth_photo((235, 225, 205)), face_landmarks())
    np.testing.assert_allclose(color, np.array([235, 225, 205]) / 255, atol=0.01)
    assert photo_teeth_color(mouth_photo((40, 15, 15)), face_landmarks()) is None      # open, dark mouth
    assert photo_teeth_color(mouth_photo((180, 70, 80)), face_landmarks()) is None     # lips (saturated)
    closed = face_landmarks()
    closed[list(LIPS_INNER), 1] = 46.0                                                   # a line: no opening
    assert photo_teeth_color(mouth_photo((235, 225, 205)), closed) is None


def test_reference_frames_alternate_between_the_portraits_framing_and_the_head(tmp_path, builtin_head, renderer):
    head = builtin_head
    import json

    from perse.synth.generator import generate_dataset
    from perse.synth.sampling import SynthSettings

    cam = orbit_camera(0.0, 0.0, 3.0, (0.0, 0.0, 0.0), 20.0, 96, 96)   # a half-body framing
    params = head.zero_params()
    photo = np.full((96, 96, 3), 90, np.uint8)
    view = ReferenceView(cam, params, image=photo, landmarks=face_landmarks(1.5), frames=3)
    out = generate_dataset(tmp_path / "ds", head, SynthSettings(num_frames_per_variant=1, image_size=48,
                                                                texture_size=256, categories=["lips"],
                                                                test_fraction=0.0),
                           progress=False, renderer=renderer, reference=view)
    frames = [f for f in json.loads((out / "dataset.json").read_text())["frames"] if f.get("reference")]
    focal = [f["camera"]["K"][0][0] for f in frames]
    assert len(frames) == 3
    assert focal[0] == pytest.approx(cam.K[0, 0].item() * 48 / 96, rel=1e-5) and focal[2] == pytest.approx(focal[0])
    assert focal[1] > 1.3 * focal[0]            # cropped on the head: a longer focal length
    with pytest.raises(TypeError, match="reference_camera"):   # the view is given one way only
        generate_dataset(tmp_path / "x", head, progress=False, reference=view, reference_camera=cam,
                         reference_params=params)


def test_the_iris_size_follows_the_photo():
    from perse.create.portrait_texture import photo_iris_angle
    from perse.landmarks import EYE_INNER, EYE_OUTER, IRIS
    from perse.synth.anatomy import head_anatomy
    from perse.head.registry import load_head_model

    anatomy = head_anatomy(load_head_model("builtin"))

    def landmarks(iris_ratio: float) -> np.ndarray:
        lm = np.zeros((478, 2))
        for side, cx in (("R", 100.0), ("L", 200.0)):
            lm[EYE_OUTER[side]], lm[EYE_INNER[side]] = (cx - 15, 100), (cx + 15, 100)
            lm[IRIS[side][0]] = (cx, 100)
            for k, a in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False)):
                lm[IRIS[side][k + 1]] = (cx + 30 * iris_ratio * np.cos(a), 100 + 30 * iris_ratio * np.sin(a))
        return lm

    small, large = photo_iris_angle(landmarks(0.17), anatomy, 0.5), photo_iris_angle(landmarks(0.21), anatomy, 0.5)
    assert 0.35 <= small < large <= 0.70
    assert photo_iris_angle(np.full((478, 2), np.nan), anatomy, 0.47) == 0.47
