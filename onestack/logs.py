"""Logging set-up shared by the supervisor and the worker processes."""

from __future__ import annotations

import logging
import os
import sys


def configure(process_name: str, level: str | None = None) -> None:
    """Send log lines to stderr, each tagged with the process that wrote it."""
    level_name = (level or os.environ.get("ONESTACK_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s [{process_name}] %(name)s: %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)
    # Our own DEBUG lines are useful; SQLAlchemy's and asyncio's drown them.
    for noisy in ("sqlalchemy", "aiosqlite", "asyncio", "alembic", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
