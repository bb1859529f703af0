"""Small geometry shared by the head, tracker, synthesis and avatar: pure functions, numpy or torch.

    rotations   axis-angle (Rodrigues, left Jacobian of SO(3)), quaternions, Euler angles
    triangles   triangle corners and normals, closest point, barycentrics, per-triangle frames
    easing      smoothstep
    sampling    bilinear sampling of images at pixel positions

Model convention (the head's): +x is the subject's left, +y up, +z out of the face.
"""
