"""Command line: ``python -m ecgsynth export ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys

from .distort import PRESETS
from .export import main_export
from .layout import LAYOUTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecgsynth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write synthetic pages with ground truth to a folder")
    ex.add_argument("--records", help="folder (or record) of WFDB files; default: embedded set")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--num", type=int, required=True, help="number of pages")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--preset", choices=PRESETS, default="clean")
    ex.add_argument("--dpi", type=float, default=200.0)
    ex.add_argument("--layout", default="random", help=f"{' | '.join(LAYOUTS)} | random")
    ex.add_argument("--paper", choices=["letter", "a4"], default="letter")
    ex.add_argument(
        "--conventions",
        choices=["standard", "random"],
        default="standard",
        help="printing conventions: standard (classic page) or random (drawn per page)",
    )
    ex.add_argument(
        "--format",
        choices=["png", "pdf"],
        default="png",
        help="page image as NAME.png, or NAME.pdf (a raster PDF of the paper's size)",
    )
    ex.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ex.add_argument("--batch", type=int, default=8, help="pages rendered together")
    ex.add_argument(
        "--mask-unplotted",
        action="store_true",
        help="write NaN for samples the page does not show (as ECG-Image-Kit does)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.num < 1 or args.batch < 1:
        print("error: --num and --batch must be positive", file=sys.stderr)
        return 2
    return main_export(args)


if __name__ == "__main__":
    sys.exit(main())
