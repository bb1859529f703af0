"""The MediaPipe FaceMesh landmark ids the code names: one table for the head generator, the tracker,
the texture painters and the retargeter.

Topology: 478 points, the 468 mesh points and 2 x 5 iris points (``refine_landmarks=True``).
Sides: "R" is the subject's right (-x in the head frame), "L" the subject's left (+x).
Polylines run outer -> inner (brows) or corner -> corner (lids), as the names say.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 478
NUM_MESH_POINTS = 468  # the face mesh; the iris points follow

# Midline points, top to bottom.
FOREHEAD_TOP = 10
GLABELLA = 168         # between the eyes, where glasses rest
NOSE_BRIDGE = 6        # halfway down the bridge
NOSE_TIP = 1
SUBNASALE = 2          # where the nose meets the upper lip
UPPER_LIP_TOP = 0
INNER_UPPER_LIP = 13
INNER_LOWER_LIP = 14
LOWER_LIP_BOTTOM = 17
CHIN_FRONT = 199
CHIN_BOTTOM = 152

# Paired points.
EYE_OUTER = {"R": 33, "L": 263}
EYE_INNER = {"R": 133, "L": 362}
EYE_UPPER_MID = {"R": 159, "L": 386}
EYE_LOWER_MID = {"R": 145, "L": 374}
IRIS = {"R": (468, 469, 470, 471, 472), "L": (473, 474, 475, 476, 477)}  # centre first
IRIS_CENTER = {s: ring[0] for s, ring in IRIS.items()}
MOUTH_CORNER = {"R": 61, "L": 291}
MOUTH_INNER_CORNER = {"R": 78, "L": 308}
CHEEKBONE = {"R": 50, "L": 280}
CHEEK_UPPER = {"R": 101, "L": 330}
CHEEK = {"R": 205, "L": 425}
NOSE_ALA = {"R": 98, "L": 327}
NOSE_SIDE = {"R": 48, "L": 278}
JAW_ANGLE = {"R": 172, "L": 397}
FACE_SIDE = {"R": 234, "L": 454}

# Polylines and groups.
EYE_UPPER_LID = {"R": (33, 246, 161, 160, 159, 158, 157, 173, 133), "L": (263, 466, 388, 387, 386, 385, 384, 398, 362)}
EYE_LOWER_LID = {"R": (33, 7, 163, 144, 145, 153, 154, 155, 133), "L": (263, 249, 390, 373, 374, 380, 381, 382, 362)}
BROW_UPPER = {"R": (70, 63, 105, 66, 107), "L": (300, 293, 334, 296, 336)}  # outer -> inner
BROW_LOWER = {"R": (46, 53, 52, 65, 55), "L": (276, 283, 282, 295, 285)}  # outer -> inner
BROW = {s: BROW_LOWER[s] + BROW_UPPER[s] for s in ("R", "L")}
BROW_INNER = {"R": (55, 107, 65, 66), "L": (285, 336, 295, 296)}
BROW_OUTER = {"R": (46, 70, 53, 63), "L": (276, 300, 283, 293)}
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)


def eye_corner_distance(points: np.ndarray) -> float:
    """Distance between the outer eye corners of (478, D) landmarks, in their unit (pixels for a photo's):
    the face's scale for every size-relative threshold."""
    return float(np.linalg.norm(np.asarray(points)[EYE_OUTER["R"]] - np.asarray(points)[EYE_OUTER["L"]]))
