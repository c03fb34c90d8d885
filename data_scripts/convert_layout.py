#!/usr/bin/env python
"""Convert a re-ID dataset between the folder-per-person layout and the Market-1501 layout.

    python data_scripts/convert_layout.py to-market  FOLDER_TREE OUT [--cam-pattern REGEX] [--mode copy]
    python data_scripts/convert_layout.py to-folder  MARKET_TREE OUT [--mode copy|hardlink|symlink]

to-market: train/<person>/<image> -> bounding_box_train/PPPP_cCs1_NNNNNN_00.jpg (query/ -> query/,
gallery/ -> bounding_box_test/); identities.csv and files.csv record the mappings. to-folder: the
reverse, keeping the Market file names and writing reid_dataset.json with the camera pattern. The logic
lives in reid_uda_lib/data/convert.py; see data_scripts/README.md.
"""
from __future__ import annotations

import argparse
import sys

from reid_uda_lib.data.convert import LINK_MODES, folder_to_market, market_to_folder
from reid_uda_lib.data.layouts import DatasetLayoutError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("direction", choices=("to-market", "to-folder"))
    ap.add_argument("src", help="the dataset folder to convert")
    ap.add_argument("out", help="new output folder (must not exist or be empty)")
    ap.add_argument("--cam-pattern", default=None,
                    help="to-market: regex with a named group 'cam' searched in each file name "
                         r"(e.g. 'cam(?P<cam>\d+)'; default: reid_dataset.json in SRC, else all camera 1)")
    ap.add_argument("--mode", choices=LINK_MODES, default="copy", help="copy files (default) or link them")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.direction == "to-market":
            counts = folder_to_market(args.src, args.out, cam_pattern=args.cam_pattern, mode=args.mode)
        else:
            if args.cam_pattern:
                raise ValueError("--cam-pattern applies to to-market only (Market file names hold the camera)")
            counts = market_to_folder(args.src, args.out, mode=args.mode)
    except (DatasetLayoutError, FileExistsError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ok: wrote {args.out} ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
          f"check it with  python -m reid_uda_lib check {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
