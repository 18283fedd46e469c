"""Read back what the gateway recorded for an interception (tests only)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from schema.models import Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage


@dataclass
class Recorded:
    interception: Interception
    usages: list[TokenUsage]
    prompts: list[PromptUsage]
    tools: list[ToolUsage]
    thoughts: list[ModelThought]

    @property
    def usage(self) -> tuple[int, int, int, int]:
        assert len(self.usages) == 1, self.usages
        u = self.usages[0]
        return (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens,
            u.cache_write_input_tokens,
        )


def _rows(session: Session, model: Any, iid: uuid.UUID) -> list[Any]:
    stmt = select(model).where(model.interception_id == iid).order_by(model.created_at)
    return list(session.execute(stmt).scalars())


def wait_recorded(
    engine: Engine, interception_id: str | uuid.UUID, timeout: float = 10.0
) -> Recorded:
    """Wait until the interception is closed in the database, then return all its rows."""
    iid = uuid.UUID(str(interception_id))
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as s:
            row = s.get(Interception, iid)
            if row is not None and row.ended_at is not None:
                return Recorded(
                    row,
                    _rows(s, TokenUsage, iid),
                    _rows(s, PromptUsage, iid),
                    _rows(s, ToolUsage, iid),
                    _rows(s, ModelThought, iid),
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"interception {iid} not closed in the database (row={row})")
        time.sleep(0.05)


def all_interceptions(engine: Engine) -> list[Interception]:
    with Session(engine) as s:
        return list(s.execute(select(Interception)).scalars())
