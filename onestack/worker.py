"""A module worker process: ``python -m onestack.worker``.

The supervisor starts one process per worker and writes a JSON spec to its
standard input: ``{"module", "config", "dataDir", "databaseUrl", "index"}``.
The worker starts the module, writes ``{"ready": true}`` (or
``{"error": "..."}``) as one line to standard output, serves until SIGTERM or
SIGINT, then stops the module and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from onestack import logs
from onestack.events import EventClient, socket_path
from onestack.modules import REGISTRY, WorkerContext
from onestack.store import Store

logger = logging.getLogger(__name__)

EXIT_START_FAILED = 3


def _report(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run(spec: dict[str, Any]) -> int:
    name = spec["module"]
    module_spec = REGISTRY[name]
    config = module_spec.config_model.model_validate(spec["config"])
    data_dir = Path(spec["dataDir"])
    store = Store(spec["databaseUrl"])
    events = EventClient(socket_path(data_dir))
    await events.start()
    context = WorkerContext(
        data_dir=data_dir, store=store, events=events, worker_index=spec["index"]
    )

    try:
        module = module_spec.load()(config, context)
        events.subscribe(module.on_event)
        await module.start()
    except OSError as exc:
        # Binding failed (a port in use, an address not on this machine):
        # the operator needs the system's reason, which carries no secret.
        logger.error("module %s failed to start: %s", name, exc)
        _report({"error": exc.strerror or str(exc)})
        await events.stop()
        await store.close()
        return EXIT_START_FAILED
    except Exception:
        logger.exception("module %s failed to start", name)
        _report({"error": "internal error; the server log has the details"})
        await events.stop()
        await store.close()
        return EXIT_START_FAILED

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("module %s worker %d serving", name, spec["index"])
    _report({"ready": True})

    await stopping.wait()
    logger.info("module %s worker %d stopping", name, spec["index"])
    try:
        await module.stop()
    except Exception:
        logger.exception("module %s failed to stop cleanly", name)
    await events.stop()
    await store.close()
    return 0


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker if the supervisor dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        logger.warning("prctl is unavailable: this worker may outlive its supervisor")


def main() -> None:
    _die_with_parent()
    spec = json.loads(sys.stdin.readline())
    logs.configure(f"{spec['module']}-{spec['index']}")
    # The supervisor's terminal sends SIGINT to the whole process group; the
    # supervisor decides when workers stop, so ignore it until run() starts.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(run(spec)))
    sys.exit(uvloop.run(run(spec)))


if __name__ == "__main__":
    main()
