"""Command line: `gitops-agent run | validate | history | rollback | resume`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import load_settings
from agent.errors import ConfigError
from agent.logs import setup_logging

EXIT_CONFIG = 2
PRIVATE_UMASK = 0o077  # directories 0700, files 0600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gitops-agent {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="run the agent")
    run.add_argument("--config", "-c", type=Path, required=True, help="TOML configuration file")
    run.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    validate = verbs.add_parser("validate", help="check a configuration file and exit")
    validate.add_argument("--config", "-c", type=Path, required=True)
    _remote_verbs(verbs)
    return parser


def _remote_verbs(verbs: Any) -> None:
    """Verbs that ask a running agent over HTTP (see agent.remote)."""
    server_help = "the agent's URL (default: $GITOPS_AGENT_SERVER, else http://127.0.0.1:8080)"
    history = verbs.add_parser("history", help="show an application's sync history")
    rollback = verbs.add_parser("rollback", help="sync an application to an earlier revision and pause auto-sync")
    resume = verbs.add_parser("resume", help="resume auto-sync of an application paused by a rollback")
    for verb in (history, rollback, resume):
        verb.add_argument("app", help="application name")
        verb.add_argument("--server", default=None, help=server_help)
    rollback.add_argument("revision", nargs="?", default=None,
                          help="commit SHA (or a prefix) from the history; default: the previous good one")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verb in ("history", "rollback", "resume"):
        from agent.remote import run_remote

        return run_remote(args.verb, args.app, server=args.server, revision=getattr(args, "revision", None))
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
