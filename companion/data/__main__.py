"""Command line: make sure a data set is on disk (used by ``make data``).

python -m companion.data fashion-mnist          # find or download, verify
python -m companion.data fashion-mnist --check  # find only; exit 1 if absent
"""

from __future__ import annotations

import argparse
import sys

from companion.data.datasets import DATASETS, load_idx_dataset
from companion.errors import DataChecksumError, DataNotFoundError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.data", description=__doc__)
    parser.add_argument("dataset", help=f"one of {sorted(DATASETS)}")
    parser.add_argument("--check", action="store_true", help="only look on disk, never download")
    parser.add_argument("--root", default=None, help="folder holding the files (optional)")
    args = parser.parse_args(argv)
    if args.dataset not in DATASETS:
        print(
            f"error: unknown dataset {args.dataset!r}; choose one of {sorted(DATASETS)}.",
            file=sys.stderr,
        )
        return 2
    spec = DATASETS[args.dataset]
    try:
        for split in sorted({key[0] for key in spec.files}):
            images, labels = load_idx_dataset(spec, split, root=args.root, download=not args.check)
            print(f"{spec.name} {split}: {tuple(images.shape)} images, {len(labels)} labels, ok")
    except (DataNotFoundError, DataChecksumError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
