#!/usr/bin/env python
"""Verify, extract and check a downloaded re-ID dataset archive.

    python data_scripts/prepare_dataset.py {market1501,dukemtmc,msmt17,cuhk03} ARCHIVE --out DIR [--sha256 HEX]

Steps: checksum (``--sha256`` when given; the published MD5 for Market-1501-v15.09.15.zip and
DukeMTMC-reID.zip), extraction (zip or tar), locating the dataset folder under DIR, parsing its layout
and printing the counts. Afterwards ``load_dataset(NAME, root=DIR)`` finds it. See data_scripts/README.md
for where to obtain each dataset and its terms of use.
"""
from __future__ import annotations

import argparse
import sys

from reid_uda_lib.data.datasets import DATASET_NAMES, DatasetLayoutError
from reid_uda_lib.data.image_dataset import CorruptImageError
from reid_uda_lib.data.prepare import ChecksumError, prepare_dataset


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=DATASET_NAMES, type=str.lower, help="which dataset the archive holds")
    ap.add_argument("archive", help="the downloaded .zip / .tar(.gz) file")
    ap.add_argument("--out", required=True, help="folder to extract into (the data root for load_dataset)")
    ap.add_argument("--sha256", default=None, help="expected SHA-256 of the archive")
    ap.add_argument("--skip-known-checksum", action="store_true",
                    help="do not check the published MD5 of well-known archive names (re-packaged copies)")
    ap.add_argument("--verify", choices=("none", "error", "skip"), default="none",
                    help="decode every image after extraction: fail on ('error') or drop ('skip') bad ones")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ds = prepare_dataset(args.name, args.archive, args.out, sha256=args.sha256,
                             check_known=not args.skip_known_checksum, verify=args.verify)
    except (ChecksumError, DatasetLayoutError, CorruptImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ok: load it with  load_dataset({args.name!r}, root={args.out!r})  ->  {ds!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
