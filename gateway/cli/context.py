"""What every admin command needs: the same settings resolution as the server, a database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from gateway.cli import output
from gateway.crypto import Keyring, KeyringError
from gateway.settings import LoadedSettings, load_settings
from gateway.store.errors import Conflict, NotFound
from gateway.validation import InvalidField


@dataclass
class CliState:
    config_file: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _loaded: LoadedSettings | None = None
    _engine: Engine | None = None

    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            try:
                self._loaded = load_settings(self.overrides, config_file=self.config_file)
            except ValueError as exc:
                output.usage_error(str(exc))
        return self._loaded

    def engine(self) -> Engine:
        if self._engine is None:
            from gateway.runtime import open_engine

            settings = self.loaded().settings  # outside the try: its usage error must stay one
            try:
                self._engine = open_engine(settings)
            except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
                output.fail(f"cannot open the database: {exc}")
        return self._engine

    def keyring(self) -> Keyring:
        from gateway.runtime import load_keyring

        try:
            return load_keyring(self.loaded().settings)
        except KeyringError as exc:
            output.fail(str(exc))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


@contextmanager
def session(ctx: typer.Context) -> Iterator[Session]:
    """A session that commits on success and turns store errors into clean CLI errors."""
    st = state(ctx)
    with Session(st.engine(), expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except InvalidField as exc:
            s.rollback()
            output.usage_error(f"{exc.field}: {exc.message}")
        except Conflict as exc:
            s.rollback()
            output.fail(exc.message)
        except NotFound as exc:
            s.rollback()
            output.fail(str(exc))
        except KeyringError as exc:  # e.g. a key sealed with a key no longer configured
            s.rollback()
            output.fail(str(exc))
