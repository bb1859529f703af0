"""`perse`: the PERSE engine on the command line.

Every command prints a one-line error and exits with code 2 on bad input (see `perse.errors`).
`default` as AVATAR means the bundled `assets/default.perse`.

    common       avatar loading, the shared avatar/look arguments, size and colour parsing, look files
    info, render, export, create, track, synth, train, eval, drive, bench
                 one module per command: ``add_parser(sub)`` registers it, ``run(args)`` runs it

Only this package knows the flags: the engine's errors name settings (`PerseError.settings`), and
`main` adds the flags this command has for them (`common.phrase_error`).
"""

from __future__ import annotations

import argparse
import os
import sys

from perse.cli import bench, create, drive, eval, export, info, render, synth, track, train
from perse.cli.common import phrase_error
from perse.errors import PerseError
from perse.openmp import use_wait_policy

EPILOG_EXAMPLES = """examples:
  perse info default
  perse render default --out face.png --yaw 30 --attr hair=blonde --expr mouthSmileLeft=0.8
  perse export default --preset turntable --out turntable.mp4 --frames 90
  perse create portrait.jpg --out me.perse --quality draft
  perse track portrait.jpg --out params.json --overlay fit.png
  perse synth --out data/synth
  perse train data/synth --out me.perse
  perse eval me.perse data/synth
  perse drive default --video me.mp4 --out avatar.mp4 --side-by-side
  perse bench
"""

COMMANDS = (info, render, export, create, track, synth, train, eval, drive, bench)  # the order of --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perse", description="PERSE Studio engine: editable Gaussian head avatars.",
                                     epilog=EPILOG_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"perse {__import__('perse').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # before the command imports torch: commands that only train set the short OpenMP spin
    use_wait_policy(getattr(args, "wait_policy", "interactive"))
    try:
        return int(args.func(args) or 0)
    except PerseError as exc:
        print(f"perse: error: {phrase_error(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"perse: interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`perse info default | head`): not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
