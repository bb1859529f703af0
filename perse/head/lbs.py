"""Linear blend skinning for heads in FLAME's layout, as small pure functions.

Conventions (FLAME / SMPL):
    V vertices, J joints, S shape and E expression directions, P = 9 * (J - 1) pose-corrective inputs.
    Rotations are axis-angle vectors (radians); rotation matrices act on column vectors.
    The pose-corrective input is (R_j - I) flattened, for every non-root joint j.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from perse.geometry.rotations import axis_angle_to_matrix


def blend_shapes(coeffs: Tensor, directions: Tensor) -> Tensor:
    """Linear combination of displacement directions.

    Args:
        coeffs: (B, K) coefficients.
        directions: (V, 3, K) displacement basis.
    Returns:
        (B, V, 3) displacements.
    """
    return torch.einsum("bk,vck->bvc", coeffs, directions)


def vertices_to_joints(j_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Regress joint locations from vertices.

    Args:
        j_regressor: (J, V) sparse-in-spirit regression weights.
        vertices: (B, V, 3).
    Returns:
        (B, J, 3) joint locations.
    """
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


def rigid_transforms(rot_mats: Tensor, joints: Tensor, parents: Tensor) -> tuple[Tensor, Tensor]:
    """Compose per-joint rotations along the kinematic tree.

    Args:
        rot_mats: (B, J, 3, 3) local joint rotations.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) parent index per joint, -1 for the root (parents precede children).
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        rel_transforms: (B, J, 4, 4) transforms mapping rest-pose points to posed points.
    """
    B, J = joints.shape[:2]
    rel_joints = joints.clone()
    rel_joints[:, 1:] -= joints[:, parents[1:]]
    local = torch.zeros(B, J, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel_joints
    local[..., 3, 3] = 1.0
    chain = [local[:, 0]]
    for j in range(1, J):
        chain.append(chain[int(parents[j])] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    posed_joints = world[..., :3, 3]
    # Remove the rest-pose joint location so the transform applies to rest-pose vertices.
    rest = F.pad(joints, (0, 1))[..., None]  # (B, J, 4, 1), homogeneous w = 0
    rel_transforms = world - F.pad(world @ rest, (3, 0))
    return posed_joints, rel_transforms


def lbs(
    betas: Tensor,
    full_pose: Tensor,
    v_template: Tensor,
    shapedirs: Tensor,
    posedirs: Tensor,
    j_regressor: Tensor,
    parents: Tensor,
    lbs_weights: Tensor,
) -> tuple[Tensor, Tensor]:
    """Shape and expression blend shapes, pose correctives, then linear blend skinning.

    Args:
        betas: (B, K) concatenated shape and expression coefficients.
        full_pose: (B, J, 3) axis-angle rotation per joint.
        v_template: (V, 3) mean template.
        shapedirs: (V, 3, K) concatenated shape and expression directions.
        posedirs: (P, V * 3) pose-corrective directions, P = 9 * (J - 1).
        j_regressor: (J, V).
        parents: (J,).
        lbs_weights: (V, J) skinning weights (rows sum to one).
    Returns:
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints.
    """
    B = betas.shape[0]
    v_shaped = v_template[None] + blend_shapes(betas, shapedirs)
    joints = vertices_to_joints(j_regressor, v_shaped)

    rot_mats = axis_angle_to_matrix(full_pose)  # (B, J, 3, 3)
    eye = torch.eye(3, dtype=betas.dtype, device=betas.device)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(B, -1)  # (B, P)
    v_posed = v_shaped + (pose_feature @ posedirs).reshape(B, -1, 3)

    posed_joints, transforms = rigid_transforms(rot_mats, joints, parents)
    per_vertex = torch.einsum("vj,bjmn->bvmn", lbs_weights, transforms)  # (B, V, 4, 4)
    vertices = (per_vertex[..., :3, :3] @ v_posed[..., None])[..., 0] + per_vertex[..., :3, 3]
    return vertices, posed_joints
