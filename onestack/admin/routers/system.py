"""Status and health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends

from onestack.admin.app import AdminState, get_state

router = APIRouter(prefix="/api", tags=["system"])


def iso_now() -> str:
    """Return the current UTC time as the reference writes it: ...T10:30:00.000Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy", "timestamp": iso_now()}


@router.get("/status")
async def status(state: AdminState = Depends(get_state)) -> dict[str, Any]:
    return state.status()
