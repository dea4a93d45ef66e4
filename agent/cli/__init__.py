"""Command line: `gitops-agent run | validate` and `gitops-agent app …` against a running agent.

`app list | get | diff | sync | refresh | history | rollback | resume | wait` are in
agent.cli.app; the top-level `history | rollback | resume` still work and say they are
deprecated.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__

EXIT_CONFIG = 2
PRIVATE_UMASK = 0o077  # directories 0700, files 0600


def _parser() -> argparse.ArgumentParser:
    from agent.cli import app

    parser = argparse.ArgumentParser(prog="gitops-agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gitops-agent {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", help="run the agent")
    run.add_argument("--config", "-c", type=Path, required=True, help="TOML configuration file")
    run.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    validate = verbs.add_parser("validate", help="check a configuration file and exit")
    validate.add_argument("--config", "-c", type=Path, required=True)
    app.add_parsers(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verb not in ("run", "validate"):
        from agent.cli import app

        return app.run(args)
    # Imported here: the `app` verbs start in a fraction of the time without the agent's own modules.
    import asyncio

    from agent.config import load_settings
    from agent.errors import ConfigError
    from agent.logs import setup_logging

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"gitops-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.verb == "validate":
        print(f"{args.config}: ok, {len(settings.applications)} applications, {len(settings.clusters)} [[clusters]]")
        return 0
    setup_logging(level=args.log_level, fmt=args.log_format)
    # Everything the agent writes (the repository cache of every tenant, the state snapshot, keys,
    # render workspaces) is its own: private whatever umask it was started with.
    os.umask(PRIVATE_UMASK)
    from agent.runtime import run_agent  # imports the Kubernetes client only when running

    return asyncio.run(run_agent(settings))
