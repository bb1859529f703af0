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

# OpenMP threads (torch's intra-op pool, libgomp) wait at every barrier of the hundreds of small parallel
# ops in a training step. Spinning long there (libgomp's default, 300,000 turns) is fastest on an idle
# machine and ruinous beside another busy process, which holds the core the spinner waits for; not
# spinning at all (OMP_WAIT_POLICY=PASSIVE) is robust but pays a wake-up at every op. A short spin keeps
# both: a draft's training step, medians of three runs on the 2-core CPU, idle / beside one busy
# process: default 0.167 / ~0.59 s, 3,000 turns 0.155 / 0.357 s, passive 0.274 / 0.218 s. Set before
# torch loads libgomp (importing perse comes first in every entry point); a user's setting of either
# variable wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "3000")

__version__ = "0.1.0"
