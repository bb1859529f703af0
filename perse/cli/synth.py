"""``perse synth --out DATASET``: a synthetic attribute dataset (`perse.synth.generator`)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic attribute dataset",
                       epilog="example: perse synth --out data/synth --size 256")
    p.add_argument("--out", required=True, help="dataset folder (must not exist or be empty)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--frames-per-variant", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    p.add_argument("--flame", help="use a FLAME file instead of the built-in head")
    p.add_argument("--flame-embedding", help="mediapipe_landmark_embedding.npz for --flame")
    p.set_defaults(func=run)


def run(args) -> int:
    from perse.head.registry import load_head_model
    from perse.synth.generator import generate_dataset
    from perse.synth.sampling import SynthSettings

    head = load_head_model(args.flame, args.flame_embedding)
    settings = SynthSettings(num_frames_per_variant=args.frames_per_variant, image_size=args.size, seed=args.seed)
    out = generate_dataset(args.out, head, settings, overwrite=args.overwrite)
    print(f"wrote dataset {out}")
    return 0
