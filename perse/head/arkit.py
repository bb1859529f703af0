"""Names of the built-in head's expression directions (Apple ARKit blend-shape names).

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
