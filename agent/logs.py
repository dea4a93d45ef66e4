"""Structured logging: JSON lines by default, readable text on a terminal.

Context (app, revision, object) is passed as `extra=` and lands as top-level keys.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

CONTEXT_KEYS = ("app", "revision", "object", "action", "repo", "error", "duration", "sync_status",
                "health_status", "author", "changes", "trigger", "subject", "method", "path", "initiated_by",
                "token_file", "template", "service", "recipient")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={record.__dict__[k]}" for k in CONTEXT_KEYS if k in record.__dict__)
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{clock} {record.levelname:<7} {record.getMessage()}"
        if context:
            line += f"  {context}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(*, level: str = "info", fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_text = fmt == "text" or (fmt == "auto" and sys.stderr.isatty())
    handler.setFormatter(TextFormatter() if use_text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # These libraries log request details at INFO/DEBUG that could carry credentials; casbin logs its
    # model and every policy line it loads at INFO.
    for noisy in ("kubernetes_asyncio", "dulwich", "aiohttp.access", "urllib3", "casbin"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
