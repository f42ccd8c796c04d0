"""Modules: list them, read their state, start, stop, reload, configure.

Start, stop and reload act on the running processes only. The ``enabled``
key of a module's config decides whether it runs after the next start of
the server; PUT /api/modules/:name/config changes it and applies it at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Body, Depends

from onestack import config as config_module
from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import OPERATION_FAILED, ApiError, not_found
from onestack.admin.routers.config import apply, invalid_config
from onestack.config import ConfigError
from onestack.modules import MODULE_NAMES
from onestack.ssh.hostkeys import host_key_fingerprints
from onestack.supervisor import ModuleError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["modules"])


def _check_name(name: str) -> str:
    if name not in MODULE_NAMES:
        raise not_found("module", name)
    return name


def _failed(name: str, exc: ModuleError) -> ApiError:
    # ModuleError messages are written for API clients (supervisor.py).
    return ApiError(500, OPERATION_FAILED, str(exc), {"module": name})


def _answer(state: AdminState, name: str) -> dict[str, Any]:
    running = state.supervisor.runners[name].running
    return {
        "success": True,
        "module": name,
        "status": "running" if running else "stopped",
    }


@router.get("/modules")
async def list_modules() -> dict[str, list[str]]:
    return {"modules": list(MODULE_NAMES)}


@router.get("/modules/{name}")
async def get_module(
    name: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    _check_name(name)
    answer = {"name": name, **state.supervisor.module_status(name)}
    if name == "ssh":
        # Users compare these with what their SFTP client shows on first
        # connect. Reading them creates the keys once if no worker has yet.
        answer["hostKeys"] = await asyncio.to_thread(
            host_key_fingerprints, state.data_dir
        )
    return answer


@router.post("/modules/{name}/start")
async def start_module(
    name: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    _check_name(name)
    try:
        await state.supervisor.start_module(name)
    except ModuleError as exc:
        raise _failed(name, exc) from None
    return _answer(state, name)


@router.post("/modules/{name}/stop")
async def stop_module(
    name: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    _check_name(name)
    await state.supervisor.stop_module(name)
    return _answer(state, name)


@router.post("/modules/{name}/reload")
async def reload_module(
    name: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    _check_name(name)
    try:
        await state.supervisor.reload_module(name)
    except ModuleError as exc:
        raise _failed(name, exc) from None
    return _answer(state, name)


@router.put("/modules/{name}/config")
async def update_module_config(
    name: str,
    update: dict[str, Any] = Body(
        ..., description="a partial module config, deep-merged"
    ),
    state: AdminState = Depends(get_state),
) -> dict[str, Any]:
    _check_name(name)
    try:
        new = await asyncio.to_thread(
            config_module.merge_update, state.config, {"modules": {name: update}}
        )
    except ConfigError as exc:
        raise invalid_config(exc) from None
    logger.info(
        "module %s config updated through the API: %s", name, ", ".join(sorted(update))
    )
    answer = await apply(state, new, "updated")
    return {"success": True, "config": answer["config"]["modules"][name]}
