"""PERSE Studio engine: personalized, editable, animatable 3D Gaussian head avatars.

Sub-packages:
    head    -- head models in FLAME's data layout (official FLAME files, the built-in head), LBS
    avatar  -- Gaussians bound to head triangles, the attribute latent space, `.perse` files
    render  -- Camera, Gaussian rasterization backends (gsplat / cpu / reference), GL mesh renderer
    synth   -- synthetic attribute dataset generator
    train   -- avatar training
    export  -- videos, PNG sequences, PLY snapshots
"""

from perse.openmp import use_wait_policy as _use_wait_policy

# Before torch loads libgomp (importing perse comes first in every entry point): passive waiting, which
# a studio frame needs beside its UI and webcam threads; `perse create` and `perse train` switch to a
# short spin (`perse.openmp`). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
_use_wait_policy("interactive")

__version__ = "0.1.0"
