"""Module worker processes and their lifecycle.

Each enabled module runs in ``workers`` processes (``onestack.worker``) that
bind their listeners with SO_REUSEPORT, so the kernel spreads connections
over them. The supervisor starts them, restarts one that dies (with backoff),
and on reload starts the new set before it stops the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import onestack
from onestack.config import Config, ModuleConfig
from onestack.events import EventHub
from onestack.modules import MODULE_NAMES, REGISTRY

logger = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 8.0
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A worker that stayed up this long starts its next restart from the first delay.
STABLE_AFTER = 60.0


class ModuleError(Exception):
    """A module operation failed; the message is safe to show to API clients."""


class ModuleUnavailable(ModuleError):
    """The module's code is not part of this version."""


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process
    started_at: float = field(default_factory=time.monotonic)
    stopping: bool = False
    monitor: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class ModuleRunner:
    """The worker processes of one module."""

    def __init__(self, supervisor: Supervisor, name: str) -> None:
        self.supervisor = supervisor
        self.name = name
        self.spec = REGISTRY[name]
        self.workers: list[Worker] = []
        self.config: ModuleConfig | None = None
        self._lock = asyncio.Lock()
        self._restart_failures = 0

    @property
    def running(self) -> bool:
        return any(worker.alive for worker in self.workers)

    def live_workers(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive]

    async def start(self, config: ModuleConfig) -> None:
        async with self._lock:
            if self.running:
                return
            self._check_available()
            self.config = config
            self.workers = await self._spawn_all(config)
            logger.info(
                "module %s started: %d workers on %s port %s",
                self.name,
                len(self.workers),
                config.host,
                ",".join(map(str, config.listen_ports())),
            )

    async def stop(self) -> None:
        async with self._lock:
            workers, self.workers = self.workers, []
            await _stop_workers(workers)
            if workers:
                logger.info("module %s stopped", self.name)

    async def reload(self, config: ModuleConfig) -> None:
        """Start a new set of workers, then stop the old set."""
        async with self._lock:
            self._check_available()
            new_workers = await self._spawn_all(config)
            old_workers, self.workers = self.workers, new_workers
            self.config = config
            await _stop_workers(old_workers)
            logger.info(
                "module %s reloaded with %d workers", self.name, len(new_workers)
            )

    def _check_available(self) -> None:
        if not self.spec.is_available():
            raise ModuleUnavailable(
                f"module {self.name!r} is not available in this version of OneStack"
            )

    async def _spawn_all(self, config: ModuleConfig) -> list[Worker]:
        # Workers start side by side: each spends a second or more importing.
        results = await asyncio.gather(
            *(self._spawn(index, config) for index in range(config.workers)),
            return_exceptions=True,
        )
        spawned = [result for result in results if isinstance(result, Worker)]
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await _stop_workers(spawned)
            raise failures[0]
        return spawned

    async def _spawn(self, index: int, config: ModuleConfig) -> Worker:
        spec = {
            "module": self.name,
            "config": config.model_dump(mode="json"),
            "dataDir": str(self.supervisor.data_dir),
            "databaseUrl": self.supervisor.database_url,
            "index": index,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "onestack.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=_worker_environment(),
            start_new_session=True,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(spec).encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()

        try:
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            line = b""
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            report = json.loads(line or b"{}")
        if not report.get("ready"):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            reason = (
                report.get("error") or f"worker exited with code {process.returncode}"
            )
            raise ModuleError(f"module {self.name!r} failed to start: {reason}")

        worker = Worker(index=index, process=process)
        worker.monitor = asyncio.create_task(self._watch(worker))
        return worker

    async def _watch(self, worker: Worker) -> None:
        """Restart ``worker`` with backoff if it exits without being asked to."""
        code = await worker.process.wait()
        if worker.stopping or worker not in self.workers:
            return
        lived = time.monotonic() - worker.started_at
        if lived > STABLE_AFTER:
            self._restart_failures = 0
        delay = RESTART_DELAYS[min(self._restart_failures, len(RESTART_DELAYS) - 1)]
        self._restart_failures += 1
        logger.warning(
            "module %s worker %d (pid %d) exited with code %s; restarting in %.1f s",
            self.name,
            worker.index,
            worker.process.pid,
            code,
            delay,
        )
        await self.supervisor.hub.publish(
            "workerRestarted",
            {
                "module": self.name,
                "worker": worker.index,
                "pid": worker.process.pid,
                "exitCode": code,
                "restartIn": delay,
            },
        )
        await asyncio.sleep(delay)
        async with self._lock:
            if worker not in self.workers or self.config is None:
                return
            try:
                replacement = await self._spawn(worker.index, self.config)
            except ModuleError as exc:
                logger.error(
                    "module %s worker %d restart failed: %s",
                    self.name,
                    worker.index,
                    exc,
                )
                self.workers.remove(worker)
                if not self.running:
                    await self.supervisor.hub.publish(
                        "moduleStopped", {"module": self.name, "status": "stopped"}
                    )
                return
            self.workers[self.workers.index(worker)] = replacement
            logger.info(
                "module %s worker %d restarted as pid %d",
                self.name,
                worker.index,
                replacement.process.pid,
            )


async def _stop_workers(workers: list[Worker]) -> None:
    """SIGTERM every worker, then SIGKILL those still alive after STOP_TIMEOUT."""
    for worker in workers:
        worker.stopping = True
        if worker.alive:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    waits = [worker.process.wait() for worker in workers]
    if not waits:
        return
    _done, pending = await asyncio.wait(
        [asyncio.ensure_future(w) for w in waits], timeout=STOP_TIMEOUT
    )
    if pending:
        for worker in workers:
            if worker.alive:
                logger.warning(
                    "worker pid %d ignored SIGTERM; killing it", worker.process.pid
                )
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
        await asyncio.wait(pending)
    for worker in workers:
        if worker.monitor is not None:
            worker.monitor.cancel()


def _worker_environment() -> dict[str, str]:
    # Workers import the same onestack package as the supervisor, installed
    # or not: put its parent directory first on their path.
    env = dict(os.environ)
    package_parent = str(Path(onestack.__file__).resolve().parent.parent)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_parent + (os.pathsep + existing if existing else "")
    return env


class Supervisor:
    """Runs the enabled modules and answers for their state."""

    def __init__(
        self, data_dir: Path, config: Config, database_url: str, hub: EventHub
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.database_url = database_url
        self.hub = hub
        self.started_at = time.monotonic()
        self.runners = {name: ModuleRunner(self, name) for name in MODULE_NAMES}

    def module_config(self, name: str, config: Config | None = None) -> ModuleConfig:
        """Return the config a module's workers run with.

        The http module redirects to the https module's port, so it is given
        that port from the https section rather than asking the user twice.
        """
        config = config or self.config
        module_config: ModuleConfig = getattr(config.modules, name)
        if name == "http":
            module_config = module_config.model_copy(
                update={"httpsPort": config.modules.https.port}
            )
        return module_config

    async def start_enabled(self) -> None:
        """Start every enabled module; one that fails is logged, not fatal."""
        for name in MODULE_NAMES:
            module_config = self.module_config(name)
            if not module_config.enabled:
                continue
            try:
                await self.runners[name].start(module_config)
            except ModuleError as exc:
                logger.error("%s", exc)

    async def start_module(self, name: str) -> None:
        await self.runners[name].start(self.module_config(name))
        await self.hub.publish("moduleStarted", {"module": name, "status": "running"})

    async def stop_module(self, name: str) -> None:
        await self.runners[name].stop()
        await self.hub.publish("moduleStopped", {"module": name, "status": "stopped"})

    async def reload_module(self, name: str) -> None:
        await self.runners[name].reload(self.module_config(name))
        await self.hub.publish("moduleReloaded", {"module": name, "status": "running"})

    async def apply_config(self, new: Config) -> list[str]:
        """Adopt ``new`` and bring each changed module in line with it.

        Returns the messages of module operations that failed; the config is
        adopted regardless, as the API already stored it.
        """
        old, self.config = self.config, new
        failures: list[str] = []
        for name in MODULE_NAMES:
            before = self.module_config(name, old)
            after = self.module_config(name, new)
            runner = self.runners[name]
            if before == after and (runner.running or not after.enabled):
                continue
            try:
                if not after.enabled:
                    if runner.running:
                        await self.stop_module(name)
                elif runner.running:
                    await self.reload_module(name)
                elif runner.spec.is_available():
                    await self.start_module(name)
            except ModuleError as exc:
                logger.error("applying config to module %s failed: %s", name, exc)
                failures.append(str(exc))
        if old.server.adminPanel.host != new.server.adminPanel.host or (
            old.server.adminPanel.port != new.server.adminPanel.port
        ):
            logger.warning(
                "the admin listener's new address takes effect at the next start"
            )
        if old.database != new.database:
            logger.warning("the new database URL takes effect at the next start")
        return failures

    def module_status(self, name: str) -> dict[str, Any]:
        runner = self.runners[name]
        return {
            "running": runner.running,
            "workers": len(runner.live_workers()),
            "customThreads": 0,
            "config": self.module_config(name).model_dump(mode="json"),
        }

    def worker_pids(self) -> list[int]:
        return [
            worker.process.pid
            for runner in self.runners.values()
            for worker in runner.live_workers()
        ]

    def memory(self) -> dict[str, int]:
        """Return memory use in bytes, in the reference's Node.js-shaped keys.

        heapTotal and heapUsed describe the supervisor (its RSS and unique
        set size), external the sum of the workers' RSS, rss all of them.
        """
        me = psutil.Process()
        own = me.memory_info().rss
        try:
            unique = me.memory_full_info().uss
        except (psutil.AccessDenied, AttributeError):
            unique = own
        external = 0
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.Error):
                external += psutil.Process(pid).memory_info().rss
        return {
            "heapUsed": unique,
            "heapTotal": own,
            "external": external,
            "rss": own + external,
        }

    def status(self) -> dict[str, Any]:
        return {
            "uptime": int(time.monotonic() - self.started_at),
            "memory": self.memory(),
            "modules": {name: self.module_status(name) for name in MODULE_NAMES},
        }

    async def shutdown(self) -> None:
        await asyncio.gather(*(runner.stop() for runner in self.runners.values()))
