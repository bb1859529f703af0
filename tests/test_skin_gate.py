"""The skin gate: which photo pixels may paint the neck, the ears and what lies below the jaw."""

from __future__ import annotations

import numpy as np

from perse.create.skin_gate import (FRAMED_REGIONS, GATED_REGIONS, JAW_RAMP, below_jaw_weight, beside_face_weight,
                                    gate_weights, hair_beside_face, photo_skin_gate, skin_likeness)
from perse.landmarks import EYE_OUTER, MOUTH_CORNER, NUM_LANDMARKS, eye_corner_distance


def test_skin_gate_drops_the_mixed_pixels_along_a_collar():
    """Between skin and a black collar the photo blends the two: skin-like by colour, only darker. The
    gate on the photo rejects those pixels (they drew a grey line along the seen neck's edge)."""
    skin = np.array([0.85, 0.70, 0.60])
    rows = np.zeros((512, 3))
    rows[:300] = skin
    rows[300:303] = 0.8 * skin                      # the edge's blend of skin and collar
    image = np.round(np.broadcast_to(rows[:, None], (512, 512, 3)) * 255).astype(np.uint8)
    uv = np.stack([np.full(512, 256.0), np.arange(512.0)], axis=1)
    gate = photo_skin_gate(image, uv)(skin)
    assert skin_likeness(0.8 * skin, skin) > 0.99      # the colour alone passes them
    assert gate[300:303].max() < 0.05
    assert gate[:280].min() > 0.99 and gate[310:].max() == 0.0
    assert np.all(np.diff(gate[270:300]) <= 1e-6)      # a ramp toward the edge, not a step


def disc_face(centre=(200.0, 180.0), radius=80.0) -> np.ndarray:
    """(478, 2) stand-in landmarks: the face mesh points on a disc, eyes and mouth corners placed."""
    rng = np.random.default_rng(0)
    angle, r = rng.uniform(0, 2 * np.pi, NUM_LANDMARKS), radius * np.sqrt(rng.uniform(0, 1, NUM_LANDMARKS))
    points = np.asarray(centre) + np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    points[:16] = np.asarray(centre) + radius * np.stack([np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                                                          np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))], 1)
    points[EYE_OUTER["R"]], points[EYE_OUTER["L"]] = (170.0, 160.0), (230.0, 160.0)
    points[MOUTH_CORNER["R"]], points[MOUTH_CORNER["L"]] = (180.0, 220.0), (220.0, 220.0)
    return points


def test_below_the_jaw_weight_rises_smoothly_outside_the_lower_face():
    """0 on the face, a ramp below its outline to 1, nothing beside the eyes."""
    landmarks = disc_face()
    down = np.stack([np.full(200, 200.0), np.linspace(200.0, 399.0, 200)], axis=1)   # down the middle
    w = below_jaw_weight(down, landmarks, (400, 400))
    chin = 260.0                                                                     # the disc's bottom
    assert w[down[:, 1] < chin - 1].max() == 0.0                                      # the face itself
    ramp = JAW_RAMP * eye_corner_distance(landmarks)
    assert w[down[:, 1] > chin + ramp + 2].min() == 1.0                               # a ramp's length below
    assert np.all(np.diff(w) >= -1e-9) and np.abs(np.diff(w)).max() < 0.3             # a ramp, not a step
    beside_the_eyes = below_jaw_weight(np.array([[60.0, 160.0], [340.0, 160.0]]), landmarks, (400, 400))
    assert beside_the_eyes.max() == 0.0                                               # above the mouth: not gated


def test_gate_weights_take_the_regions_and_the_jaw_weight():
    """Neck and ears always; the lower face as far as it sees below the jaw; hair beside the neck never."""
    names = ["face", "beard", *GATED_REGIONS, "back_of_head"]
    region = np.array([0, 1, 2, 3, 1, 4])
    assert gate_weights(region, names).tolist() == [0, 0, 1, 1, 0, 0]
    np.testing.assert_allclose(gate_weights(region, names, np.array([0.2, 0.7, 0.0, 0.5, 1.0, 1.0])),
                               [0.2, 0.7, 1.0, 1.0, 1.0, 0.0])


def test_beside_the_face_is_the_temples_and_cheek_sides_above_the_mouth():
    """0 between the outer eye corners (brows, a moustache) and below the mouth corners (a beard), a ramp
    to 1 beside the eyes; measured along the eye line, so a tilted head gives the same weights."""
    landmarks = disc_face()
    ramp = JAW_RAMP * eye_corner_distance(landmarks)
    row = np.stack([np.linspace(100.0, 300.0, 201), np.full(201, 160.0)], axis=1)   # along the eye line
    w = beside_face_weight(row, landmarks)
    assert w[(row[:, 0] > 170) & (row[:, 0] < 230)].max() == 0.0
    assert w[(row[:, 0] < 170 - ramp - 1) | (row[:, 0] > 230 + ramp + 1)].min() == 1.0
    assert np.abs(np.diff(w)).max() < 0.3                                          # ramps, not steps
    below = beside_face_weight(np.array([[120.0, 300.0], [280.0, 300.0]]), landmarks)
    assert below.max() == 0.0                                                      # a beard's place
    # The same face rolled by 30 degrees about its centre: the same weights at the rolled points.
    c, t = np.array([200.0, 180.0]), np.radians(30.0)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turn = lambda p: (p - c) @ rot.T + c                                              # noqa: E731
    near_eyes = row[np.abs(row[:, 0] - 200) < 90]
    np.testing.assert_allclose(beside_face_weight(turn(near_eyes), turn(landmarks)),
                               beside_face_weight(near_eyes, landmarks), atol=0.05)


def test_hair_beside_the_face_only_on_face_texels_the_photo_sees_as_hair():
    """Face, beard and ear texels (a bob over the ears) can be framing hair; forehead (bangs: the hair
    layer's own) and neck cannot; unseen or not beside the face, none is."""
    names = [*FRAMED_REGIONS, "forehead", "neck"]
    region = np.array([0, 1, 2, 3, 4, 0, 0])
    hair_seen = np.array([1.0, 0.8, 0.9, 1.0, 1.0, 0.0, 1.0])
    beside = np.array([1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(hair_beside_face(hair_seen, beside, region, names),
                               [1.0, 0.4, 0.9, 0.0, 0.0, 0.0, 0.0])
