"""Names of the built-in head's expression directions (Apple ARKit blend-shape names) and the
MediaPipe landmark groups the built-in head is defined with.

Left/Right follow ARKit: the *subject's* left/right. In the head frame the subject's left is +x.
"""

from __future__ import annotations

# Order = order of the built-in head's exprdirs (do not reorder: saved avatars index by position).
EXPRESSION_NAMES: tuple[str, ...] = (
    "jawOpen", "jawForward", "jawLeft", "jawRight",
    "mouthClose", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthPucker", "mouthFunnel", "mouthLeft", "mouthRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthDimpleLeft", "mouthDimpleRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
)

# ARKit blend shapes that the built-in head expresses through joints instead of exprdirs:
# eyeLook* -> eye_left_rot / eye_right_rot, (jaw rotation is also available as jaw_rot).
JOINT_DRIVEN = ("eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
                "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight")

# MediaPipe FaceMesh landmark ids (478-point topology with irises). "R" = subject's right (-x).
NOSE_TIP = 1
SUBNASALE = 2
NOSE_BRIDGE = 6
GLABELLA = 168
FOREHEAD_TOP = 10
CHIN_BOTTOM = 152
CHIN_FRONT = 199
MOUTH_CORNER = {"R": 61, "L": 291}
MOUTH_INNER_CORNER = {"R": 78, "L": 308}
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17
INNER_UPPER_LIP = 13
INNER_LOWER_LIP = 14
EYE_OUTER = {"R": 33, "L": 263}
EYE_INNER = {"R": 133, "L": 362}
EYE_UPPER_MID = {"R": 159, "L": 386}
EYE_LOWER_MID = {"R": 145, "L": 374}
BROW = {"R": (46, 53, 52, 65, 55, 70, 63, 105, 66, 107), "L": (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)}
BROW_INNER = {"R": (55, 107, 65, 66), "L": (285, 336, 295, 296)}
BROW_OUTER = {"R": (46, 70, 53, 63), "L": (276, 300, 283, 293)}
CHEEK = {"R": 205, "L": 425}
CHEEK_UPPER = {"R": 101, "L": 330}
NOSE_ALA = {"R": 98, "L": 327}
NOSE_SIDE = {"R": 48, "L": 278}
JAW_ANGLE = {"R": 172, "L": 397}
FACE_SIDE = {"R": 234, "L": 454}
IRIS_CENTER = {"R": 468, "L": 473}
NOSE_GROUP = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327,
              344, 440)
