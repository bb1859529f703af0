"""PERSE Studio engine: personalized, editable, animatable 3D Gaussian head avatars.

Sub-packages:
    head    -- head models in FLAME's data layout (official FLAME files, the built-in head), LBS
    avatar  -- Gaussians bound to head triangles, the attribute latent space, `.perse` files
    render  -- Camera, Gaussian rasterization backends (gsplat / cpu / reference), GL mesh renderer
    synth   -- synthetic attribute dataset generator
    train   -- avatar training
    export  -- videos, PNG sequences, PLY snapshots
"""

__version__ = "0.1.0"
