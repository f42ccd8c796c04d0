"""Parameter types shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

# SQLite and PostgreSQL store row ids as signed 64-bit integers. A larger
# number cannot name a row, and passing it on makes the database driver raise.
MAX_ROW_ID = 2**63 - 1

RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
