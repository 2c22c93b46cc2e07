"""The command line of :mod:`mfcore.calibration`, and the import options every command that reads a user's cameras
shares (``python -m mfbook.adapt``, ``python -m mfbook.lift``)::

    python -m mfcore.calibration import PATH [--format F] [--cameras hd|NAME,...] [--units mm|cm|m | --scale S |
                                        --baseline CAM_A CAM_B METRES] [--up -y] -o RIG.yaml [--png RIG.png]
    python -m mfcore.calibration export RIG.yaml --format F -o PATH

A bad file, option or output path is one line ``error: …`` and exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import re
import sys

from .. import studio
from .conventions import FORMATS, METRES_PER_UNIT, UP_ROTATIONS
from .frame import read_rig
from .summary import draw_rig, save_png, summary
from .writers import WRITERS

_SIGNED_AXIS = re.compile(r"^[+-]?[xyz]$")


def normalise_argv(argv: list[str]) -> list[str]:
    """``--up -y`` → ``--up=-y``: argparse reads a value that starts with '-' as an option, so the documented spelling
    of a negative axis would fail with 'expected one argument'. Only a signed axis (``x``, ``+y``, ``-z``, …) after
    ``--up`` is joined; a bare axis gets its '+'."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--up" and i + 1 < len(argv) and _SIGNED_AXIS.match(argv[i + 1]):
            value = argv[i + 1]
            out.append(f"--up={value if value[0] in '+-' else '+' + value}")
            i += 2
            continue
        if arg.startswith("--up=") and re.match(r"^[xyz]$", arg[5:]):
            arg = f"--up=+{arg[5:]}"
        out.append(arg)
        i += 1
    return out


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_import_options(parser: argparse.ArgumentParser) -> None:
    """The options of reading a calibration (:func:`read_rig`): format, cameras, units or scale or baseline, up."""
    parser.add_argument("--format", choices=FORMATS, help="calibration format (default: detected from the name and "
                                                          "content)")
    parser.add_argument("--cameras", help="comma-separated camera names or types (Panoptic: hd, vga); default all "
                                          "(Panoptic: hd)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--units", choices=tuple(METRES_PER_UNIT), help="the file's length unit (default: the "
                                                                       "format's, else inferred)")
    scale.add_argument("--scale", type=_positive_float, metavar="M_PER_UNIT",
                       help="metres per file unit (a COLMAP model from structure from motion has an arbitrary scale)")
    scale.add_argument("--baseline", nargs=3, metavar=("CAM_A", "CAM_B", "METRES"),
                       help="the known distance in metres between two camera centres: sets the scale")
    parser.add_argument("--up", choices=tuple(UP_ROTATIONS), help="the file's up axis, e.g. --up -y (default: the "
                                                                  "format's, else inferred)")


def import_options(args) -> dict:
    """The keyword arguments of :func:`read_rig` from parsed :func:`add_import_options` options (a bad baseline
    distance is a ``ValueError``)."""
    baseline = None
    if args.baseline is not None:
        a, b, metres = args.baseline
        try:
            baseline = (a, b, float(metres))
        except ValueError:
            raise ValueError(f"--baseline {a} {b} {metres}: the distance must be a number of metres, got "
                             f"{metres!r}") from None
    options = dict(format=args.format, cameras=args.cameras, units=args.units, up=args.up, scale=args.scale,
                   baseline=baseline)
    return {k: v for k, v in options.items() if v is not None}


def options_text(options: dict) -> str:
    """The import options as Python keyword arguments, for a command's "load with" hint (``units='mm'``, …)."""
    return "".join(f", {k}={v!r}" for k, v in options.items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfcore.calibration",
                                     description="Read a camera calibration into the book's rig file, or export one.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a calibration (any format) → the book's rig file, a summary and a drawing")
    imp.add_argument("path", help="calibration file or folder")
    add_import_options(imp)
    imp.add_argument("-o", "--out", required=True, help="the book's rig file to write (.yaml/.yml/.json)")
    imp.add_argument("--png", help="draw the rig into this PNG")
    exp = sub.add_parser("export", help="the book's rig file (or a built-in rig name) → a calibration format")
    exp.add_argument("rig")
    exp.add_argument("--format", choices=tuple(WRITERS), required=True)
    exp.add_argument("-o", "--out", required=True, help="file (or folder for colmap, easymocap)")
    args = parser.parse_args(normalise_argv(list(sys.argv[1:] if argv is None else argv)))
    try:
        if args.command == "export":
            path = WRITERS[args.format](studio.get_rig(args.rig), args.out)
            print(f"wrote {path} ({args.format})")
            return 0
        imported = read_rig(args.path, **import_options(args))
        studio.save_rig(imported.rig, args.out)
        print(summary(imported))
        print(f"\nwrote {args.out}")
        if args.png:
            save_png(draw_rig(imported.rig), args.png)
            print(f"wrote {args.png}")
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable output (a read-only folder, a missing parent, no space)
        where = err.filename or args.out
        print(f"error: cannot write {str(where)!r}: {err.strerror or err} (give -o/--png a writable path)",
              file=sys.stderr)
        return 2
    return 0
