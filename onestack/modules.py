"""The module registry: each protocol module's name, config model and class.

A module is a class with a strict config model, ``start()`` and ``stop()``.
The same class runs inside a worker process in production (``onestack.worker``)
and inside the test process in unit tests. The registry names classes by
import path, so the supervisor loads a protocol package only in the worker
that runs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from onestack.config import (
    DnsConfig,
    EmailConfig,
    HttpConfig,
    HttpsConfig,
    ModuleConfig,
    SshConfig,
)
from onestack.events import Event, EventClient
from onestack.store import Store

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a module instance is given by the process that runs it."""

    data_dir: Path
    store: Store
    events: EventClient | None
    worker_index: int = 0

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        """Publish an event to the supervisor; a no-op without an event bus."""
        if self.events is not None:
            await self.events.publish(type_, data)


class Module:
    """Base class of a protocol module. Subclasses set ``name`` and ``config_model``."""

    name: ClassVar[str]
    config_model: ClassVar[type[ModuleConfig]]

    def __init__(self, config: ModuleConfig, context: WorkerContext) -> None:
        self.config = config
        self.context = context

    async def start(self) -> None:
        """Bind the listeners (with SO_REUSEPORT) and load in-memory tables."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close the listeners and finish open work; safe to call twice."""
        raise NotImplementedError

    async def on_event(self, event: Event) -> None:
        """React to an event from another process, for example reload a table."""


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    config_model: type[ModuleConfig]
    class_path: str  # "package.module:ClassName"

    def is_available(self) -> bool:
        """Tell whether this version ships the module's code."""
        module_path = self.class_path.split(":", 1)[0]
        try:
            return importlib.util.find_spec(module_path) is not None
        except ModuleNotFoundError:
            return False

    def load(self) -> type[Module]:
        module_path, class_name = self.class_path.split(":", 1)
        cls = getattr(importlib.import_module(module_path), class_name)
        if not issubclass(cls, Module):
            raise TypeError(f"{self.class_path} is not a Module")
        return cls


REGISTRY: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec("http", HttpConfig, "onestack.web.module:HttpModule"),
        ModuleSpec("https", HttpsConfig, "onestack.web.module:HttpsModule"),
        ModuleSpec("dns", DnsConfig, "onestack.dns.module:DnsModule"),
        ModuleSpec("email", EmailConfig, "onestack.mail.module:EmailModule"),
        ModuleSpec("ssh", SshConfig, "onestack.ssh.module:SshModule"),
    )
}

MODULE_NAMES: tuple[str, ...] = tuple(REGISTRY)
