"""The `aibridge` admin CLI (Typer + rich). One sub-app per noun."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.config import config_app, keys_app
from gateway.cli.context import CliState
from gateway.cli.demo import demo
from gateway.cli.dumps import DumpExporters, make_dumps_app
from gateway.cli.interceptions import app as interceptions_app
from gateway.cli.interceptions import usage
from gateway.cli.providers import app as providers_app
from gateway.cli.retention import app as retention_app
from gateway.cli.users import tokens_app, users_app

ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="YAML config file (ai_gateway: keys).")
]
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="Data directory (default ./data).")
]
DatabaseOpt = Annotated[str | None, typer.Option("--database-url", help="Database URL.")]


def _root(
    ctx: typer.Context,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    overrides = {"data_dir": data_dir, "database_url": database_url}
    ctx.obj = CliState(
        config_file=config, overrides={k: v for k, v in overrides.items() if v is not None}
    )


def make_app(*, dump_exporters: DumpExporters | None = None) -> typer.Typer:
    app = typer.Typer(
        name="aibridge",
        help="aibridge: a self-hosted AI gateway. Admin commands act on the same database as "
        "the server when run with the same directory, --config or environment.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )
    app.callback()(_root)
    app.add_typer(providers_app, name="providers")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(keys_app, name="keys")
    app.add_typer(config_app, name="config")
    app.add_typer(interceptions_app, name="interceptions")
    app.add_typer(make_dumps_app(dump_exporters), name="dumps")
    app.add_typer(retention_app, name="retention")
    app.command("usage")(usage)
    app.command("demo")(demo)
    return app
