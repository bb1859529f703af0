"""``perse train DATASET --out AVATAR.perse``: train an avatar on a dataset, resumable from a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from perse.errors import PerseError

EPILOG = """examples:
  perse train data/synth --out me.perse
  perse train data/synth --out me.perse --resume   # after Ctrl-C"""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an avatar on a dataset", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset")
    p.add_argument("--out", required=True, help="output .perse file")
    p.add_argument("--preset", choices=["cpu", "cuda"], help="settings (default: by device)")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.add_argument("--gaussians", type=int, help="override the initial number of Gaussians")
    p.add_argument("--backend", default="auto", help="auto | gsplat | cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="checkpoint file (default OUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--flame", help="FLAME file when the dataset was made with one")
    p.add_argument("--flame-embedding")
    p.set_defaults(func=run, wait_policy="batch")  # training only: `perse.openmp`


def new_trainer(args, dataset, head, backend: str, device: str):
    """A Trainer on a new avatar: the device's preset with --seed, --steps and --gaussians applied."""
    import torch

    from perse.train.trainer import Trainer, TrainConfig, new_avatar_for_dataset

    cfg = TrainConfig.preset(args.preset or ("cuda" if device == "cuda" else "cpu"))
    cfg.backend = backend
    cfg.seed = args.seed
    if args.steps:
        cfg = cfg.with_steps(args.steps)
    if args.gaussians:
        cfg.num_gaussians = args.gaussians
    torch.manual_seed(cfg.seed)
    return Trainer(new_avatar_for_dataset(dataset, cfg, head), dataset, cfg, device)


def run(args) -> int:
    from perse.io_utils import check_writable_parent
    from perse.render import resolve_backend
    from perse.synth.dataset import AttributeDataset
    from perse.train.trainer import Trainer, head_model_for

    check_writable_parent(args.out)
    backend = resolve_backend(args.backend)
    device = "cuda" if backend == "gsplat" else "cpu"
    dataset = AttributeDataset(args.dataset)
    head = head_model_for(dataset, args.flame, args.flame_embedding)
    ckpt = Path(args.checkpoint) if args.checkpoint else Path(str(args.out) + ".ckpt")
    if args.resume:
        if not ckpt.exists():
            raise PerseError(f"--resume: no checkpoint at {ckpt}; run without --resume to start")
        trainer = Trainer.from_checkpoint(ckpt, dataset, device)
        print(f"resuming at step {trainer.step}")
    else:
        trainer = new_trainer(args, dataset, head, backend, device)
    if args.steps:
        trainer.cfg.steps = args.steps
    try:
        out = trainer.run(args.out, ckpt)
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(f"{exc}; run the same command with --resume") from None
    if ckpt.exists():
        ckpt.unlink()  # finished: the avatar holds everything
    print(f"wrote {out} ({trainer.avatar.num_gaussians} Gaussians, {trainer.step} steps)")
    return 0
