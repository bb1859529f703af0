"""PERSE Studio engine: personalized, editable, animatable 3D Gaussian head avatars.

Sub-packages:
    head    -- head models in FLAME's data layout (official FLAME files, the built-in head), LBS
    avatar  -- Gaussians bound to head triangles, the attribute latent space, `.perse` files
    render  -- Camera, Gaussian rasterization backends (gsplat / cpu / reference), GL mesh renderer
    synth   -- synthetic attribute dataset generator
    train   -- avatar training
    export  -- videos, PNG sequences, PLY snapshots
"""

import os as _os

# OpenMP threads (torch's intra-op pool, libgomp) spin at every barrier by default. On a machine where
# another process holds a core, each of the hundreds of small parallel ops in a training step then
# waits a scheduler time slice: measured on the 2-core CPU, perse create's training fell from ~6 to
# ~0.5 steps/s beside one other busy process, and ran at 5.7 steps/s with passive waiting. Set before
# torch loads libgomp (importing perse comes first in every entry point); a user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
