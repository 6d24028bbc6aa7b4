"""`dexterity-ros reindex DIR`: rebuild a bag's metadata.yaml from its storage (``ros2 bag reindex``).

Also repairs what an interrupted recording leaves: MCAP files without
summary are rewritten complete (every complete chunk kept), an unfinished
sqlite3 write-ahead log is folded into its database. An existing
metadata.yaml is replaced only with --overwrite (kept as metadata.yaml.bak).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reindex", help="rebuild a bag's metadata.yaml from its storage files (like `ros2 bag reindex`)",
        description="Write metadata.yaml for a rosbag2 directory from what its .mcap/.db3 files hold, repairing "
                    "files left by an interrupted recording.")
    parser.add_argument("bag", type=Path, help="bag directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing metadata.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.inspect import reindex
    from ..bags.io import BagError

    try:
        metadata, notes = reindex(args.bag, overwrite=args.overwrite)
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"repaired: {note}")
    print(f"wrote {args.bag / 'metadata.yaml'}: {len(metadata.files)} files, {len(metadata.topics)} topics, "
          f"{metadata.count} messages, {metadata.duration_ns * 1e-9:.3f} s")
    return 0
