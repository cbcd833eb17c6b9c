"""`python -m moebench.models {list,train,inspect}`: manage the trained proxies.

    list              every proxy, what it stands for, and whether it is cached
    train NAME|--all  train (or verify the cache of) proxies
    inspect NAME      the cached entry: folder, training stats, topology

The proxy cards and the default temperature are measured by tools that run the proxies:
`python -m moebench.tools.cards` and `python -m moebench.tools.temperature`.
"""

from __future__ import annotations

import argparse
import json
import sys

from moebench.errors import UserError, exit_with


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    train = sub.add_parser("train")
    train.add_argument("names", nargs="*")
    train.add_argument("--all", action="store_true")
    inspect = sub.add_parser("inspect")
    inspect.add_argument("name")
    args = parser.parse_args(argv)

    from moebench.models import train as training
    from moebench.models.corpora import load_corpus
    from moebench.models.proxies import PROXIES, proxy_arch

    try:
        if args.command == "list":
            sha = load_corpus().sha256
            for name, spec in PROXIES.items():
                cached = training.entry_is_intact(training.entry_dir(spec, sha))
                print(
                    f"{name:20s} base={spec.base:12s} proxy_of={spec.proxy_of or '-':12s} "
                    f"{'cached' if cached else 'not trained'}"
                )
        elif args.command == "train":
            names = list(PROXIES) if args.all else args.names
            if not names:
                raise UserError("train: name proxies or pass --all")
            for name in names:
                print(f"{name}: {training.ensure_proxy(name)}")
        elif args.command == "inspect":
            spec = training.proxy_spec(args.name)
            folder = training.entry_dir(spec, load_corpus().sha256)
            stats = (
                json.loads((folder / "training.json").read_text())
                if training.entry_is_intact(folder)
                else None
            )
            print(
                json.dumps(
                    {"folder": str(folder), "arch": proxy_arch(spec), "training": stats}, indent=2
                )
            )
    except UserError as err:
        exit_with(err)


if __name__ == "__main__":
    main(sys.argv[1:])
