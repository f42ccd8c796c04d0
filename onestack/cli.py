"""The ``onestack`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from onestack import config as config_module
from onestack import logs
from onestack.config import ConfigError

if TYPE_CHECKING:
    from onestack.admin.app import AdminState

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("onestack-data")
EXIT_CONFIG_INVALID = 2


async def reload_on_sighup(state: AdminState) -> None:
    """Re-read the config file; an invalid one leaves the running config."""
    try:
        await state.reload_config()
    except ConfigError as exc:
        logger.error("config reload rejected, keeping the running config: %s", exc)


async def serve(data_dir: Path) -> int:
    """Run the supervisor until SIGTERM or SIGINT; reload the config on SIGHUP."""
    # Imported here so that `onestack --help` stays fast.
    import uvicorn

    from onestack.admin.app import AdminState, create_app
    from onestack.events import EventHub, socket_path
    from onestack.store import open_store
    from onestack.supervisor import Supervisor

    try:
        config = config_module.load(data_dir)
    except ConfigError as exc:
        logger.error("%s/config.json is invalid: %s", data_dir, exc)
        for error in exc.errors:
            print(
                f"config error: {error['field']}: {error['message']}", file=sys.stderr
            )
        return EXIT_CONFIG_INVALID

    admin = config.server.adminPanel
    try:
        config_module.check_admin_exposure(config)
    except ConfigError:
        print(
            f"refusing to serve the admin API on {admin.host} with the default "
            "password: set server.adminPanel.password in "
            f"{config_module.config_path(data_dir)} (or ONESTACK_ADMIN_PASSWORD "
            "before the first start), or bind the admin panel to 127.0.0.1",
            file=sys.stderr,
        )
        return EXIT_CONFIG_INVALID

    store = await open_store(data_dir, config.database.url, migrate=True)
    hub = EventHub(socket_path(data_dir))
    await hub.start()
    supervisor = Supervisor(data_dir, config, store.url, hub)
    state = AdminState(data_dir=data_dir, store=store, hub=hub, supervisor=supervisor)
    app = create_app(state)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: asyncio.ensure_future(reload_on_sighup(state))
    )

    await supervisor.start_enabled()
    await state.start()

    server: uvicorn.Server | None = None
    server_task: asyncio.Task[None] | None = None
    if admin.enabled:
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=admin.host,
                port=admin.port,
                log_config=None,
                access_log=False,
                ws_max_size=1024 * 1024,
                timeout_keep_alive=30,
                limit_concurrency=1000,
                server_header=False,
            )
        )
        # The supervisor owns the signals: keep uvicorn from installing its own.
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        server_task = asyncio.create_task(server.serve())
        logger.info("admin API listening on http://%s:%d", admin.host, admin.port)

    waiter = asyncio.ensure_future(stopping.wait())
    watch = [waiter] + ([server_task] if server_task else [])
    await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    if server_task is not None and server_task.done():
        logger.error(
            "the admin API stopped unexpectedly (is port %d in use?)", admin.port
        )
        exit_code = 1

    logger.info("stopping")
    if server is not None and server_task is not None and not server_task.done():
        server.should_exit = True
        await asyncio.wait([server_task], timeout=5)
    waiter.cancel()
    await state.stop()
    await supervisor.shutdown()
    await hub.stop()
    await store.close()
    logger.info("stopped")
    return exit_code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="onestack",
        description="One server for websites, DNS, mail and SFTP, run through one admin API.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="start the admin API and the enabled modules"
    )
    serve_parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder for the config, database, site files and keys (default: ./onestack-data)",
    )
    serve_parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default: INFO)",
    )
    args = parser.parse_args(argv)

    if args.command == "serve":
        logs.configure("supervisor", args.log_level)
        data_dir = args.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            import uvloop
        except ImportError:
            sys.exit(asyncio.run(serve(data_dir)))
        sys.exit(uvloop.run(serve(data_dir)))


if __name__ == "__main__":
    main()
