"""The built-in head model's generator (build time): our own code, writing FLAME's data layout.

Regenerate with ``python -m perse.head.builtin --out assets/builtin_head.safetensors`` (deterministic:
the same bytes on the same machine; every random choice is drawn from a seeded generator).

Recipe
------
1. Face: MediaPipe FaceMesh (``static_image_mode=True, refine_landmarks=True``: 478 landmarks) of the
   astronaut portrait shipped with scikit-image; the 468-vertex tesselation shipped with MediaPipe
   (3-cliques of its edge list, 2 spurious cliques dropped, oriented outward). The landmarks are
   rotated into the head frame by their own mirror symmetry, symmetrised, scaled to metres (outer
   eye corners 0.09 m apart) and neutralised (the portrait smiles with parted lips: the lips are
   closed and the mouth corners relaxed). One interpolating (butterfly) subdivision adds density;
   the original 468 vertices keep their ids and positions, so landmark i is vertex i.
2. The rest of the head is a star-shaped implicit surface (cranium, jaw, neck: a smooth union of
   ellipsoids and a cylinder) sampled along the vertices of an icosphere around the head centre,
   with a radial correction so that it passes through the face oval; the part behind the face is
   cut away, the two loops are zipped together and the shell is relaxed tangentially.
3. Eye openings and the mouth opening are closed by pockets (sockets behind the eyeballs, a mouth
   cavity), the neck bottom is part of the shell: the skin is one closed, outward-oriented surface.
   Eyeballs and ears are separate closed meshes in the same arrays.

Frame and placement: metres, +y up, +z out of the face, +x toward the subject's left; x = 0 is the
symmetry plane, y = 0 the height of the outer eye corners, z = 0 about the depth of the ear canals.
So the head is centred near the origin (crown ~ +0.12, chin ~ -0.12, neck base ~ -0.21).

Joints (FLAME order) and skinning: global at the neck base, neck at the top of the neck (atlas),
jaw on the line between the two jaw hinges in front of the ears, eyes at the eyeball centres. The
skull (face, scalp, ears, sockets) is weighted to the neck joint so that neck rotation carries the
jaw and eyes (children of the neck) with it; the lower neck is on the global joint, blended
harmonically; the jaw weight covers chin, lower lip, lower jaw and the lower mouth cavity, falling off
smoothly toward the cheeks; eyeballs are rigid on their eye joint. A positive x rotation of the jaw
(``jaw_rot = (0.3, 0, 0)``) opens the mouth, as in FLAME. posedirs are zeros: the built-in head has
no pose correctives (FLAME files bring their own).

Expressions: ARKit-named displacement fields (metres at coefficient 1 = the full expression, useful
range 0..1), see :mod:`perse.head.arkit`. ``jawOpen`` is the full opening as a blend shape, equal to
the linearised skinning displacement of ``jaw_rot = (0.3, 0, 0)``; a driver should use either
jawOpen or jaw_rot for the opening, not both.

Shape: S smooth identity modes: named anthropometric modes first (scales, face and jaw width, chin,
nose, eyes, brows, cheeks, lips, ...), then smooth random modes, each orthogonalised against the
earlier ones; a coefficient of +-2 is a plausible face.

Modules, in the order the recipe uses them: `face` (landmarks, canonical frame, neutralised face),
`fields` (anchored displacement fields), `loops` (face boundary loops, lip contours), `eyes`
(eyeballs, sockets), `mouth` (the mouth cavity), `shell` (skull, back of head, neck), `ears`,
`assembly` (all parts in one array), `skinning` (joints, LBS weights), `expressions` (ARKit basis),
`identity` (shape modes), `uv_layout`, `regions`, `landmark_embedding`, and `build` (`build_head_data`
and `main`, the command above).

Build time only: run-time code reads the stored asset with `perse.head.builtin_asset` (through
`perse.head.load_head_model`) and never imports this package.
"""

from perse.head.builtin.build import NAME, SEED, build_head_data, main
from perse.head.builtin.eyes import EYEBALL_RADIUS
from perse.head.builtin.regions import REGIONS

__all__ = ["EYEBALL_RADIUS", "NAME", "REGIONS", "SEED", "build_head_data", "main"]
