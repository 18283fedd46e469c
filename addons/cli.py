"""The `aibridge` console script: the admin CLI plus `aibridge server`.

`server` lives here (not in gateway/cli) because it runs mitmproxy; everything else is plain
admin commands from `gateway.cli`. Every setting is a `server` flag (see `aibridge server --help`).
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Annotated, Any

import typer

from gateway import settings as gs
from gateway.cli import output
from gateway.cli.app import make_app
from gateway.cli.context import state
from gateway.cli.dumps import DumpExporters


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        output.usage_error(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def server(ctx: typer.Context, listen: str, workers: int, **flags: Any) -> None:
    """Run the gateway (mitmproxy in reverse mode) until SIGTERM."""
    from addons.server import WORKER_ENV, ServerConfig, run_supervisor, run_worker
    from gateway.runtime import bootstrap_admin, open_engine

    st = state(ctx)
    overrides = {**st.overrides, **{k: v for k, v in flags.items() if v is not None}}
    try:
        loaded = gs.load_settings(overrides, config_file=st.config_file)
    except ValueError as exc:
        output.usage_error(str(exc))
    host, port = _parse_listen(listen)
    if workers < 1:
        output.usage_error("--workers must be at least 1")
    is_worker = os.environ.get(WORKER_ENV) == "1"
    cfg = ServerConfig(
        host=host,
        port=port,
        overrides=overrides,
        config_file=st.config_file,
        bootstrap=not is_worker,
        reuse_port=workers > 1 or is_worker,
    )
    if workers == 1 or is_worker:
        raise typer.Exit(run_worker(cfg))
    # Supervisor: migrate and bootstrap once, then start the workers.
    engine = open_engine(loaded.settings)
    created = bootstrap_admin(engine)
    engine.dispose()
    if created is not None:
        output.info(
            f"first start: created admin user {created.username!r}; its token "
            "(shown once, store it now):"
        )
        output.say(created.token)
    output.info(f"aibridge: {workers} workers on {host}:{port}")
    raise typer.Exit(run_supervisor(cfg, workers, [sys.argv[0], *sys.argv[1:]]))


def _server_signature() -> inspect.Signature:
    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "listen",
            inspect.Parameter.KEYWORD_ONLY,
            default="127.0.0.1:8080",
            annotation=Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")],
        ),
        inspect.Parameter(
            "workers",
            inspect.Parameter.KEYWORD_ONLY,
            default=1,
            annotation=Annotated[
                int, typer.Option("--workers", help="Processes sharing the port (SO_REUSEPORT).")
            ],
        ),
    ]
    for field in gs.field_names():
        option = typer.Option(
            gs.flag_name(field),
            help=f"{gs.field_help(field)} [env {gs.env_name(field)}]",
            show_default=False,
        )
        params.append(
            inspect.Parameter(
                field,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[str | None, option],
            )
        )
    return inspect.Signature(params)


def _dump_exporters() -> DumpExporters:
    """Flow-file and HAR export need mitmproxy, so they live in addons/ (imported lazily)."""

    def flows(entries: Any, path: Any) -> Any:
        from addons.flowfile import write_flow_file

        return write_flow_file(entries, path)

    def har(entries: Any, path: Any) -> Any:
        from addons.flowfile import write_har_file

        return write_har_file(entries, path)

    return DumpExporters(flows=flows, har=har)


def build() -> typer.Typer:
    app = make_app(dump_exporters=_dump_exporters())

    def server_command(**kwargs: Any) -> None:
        server(**kwargs)

    server_command.__signature__ = _server_signature()  # type: ignore[attr-defined]
    server_command.__doc__ = server.__doc__
    app.command("server", context_settings={"help_option_names": ["-h", "--help"]})(server_command)
    return app


def bool_flags() -> frozenset[str]:
    return frozenset(
        gs.flag_name(f) for f, info in gs.Settings.model_fields.items() if info.annotation is bool
    )


def normalize_argv(argv: list[str]) -> list[str]:
    """`--ai-gateway-structured-logging` alone means `=true` (flags also take `=true|false`)."""
    flags = bool_flags()
    out = []
    for i, arg in enumerate(argv):
        bare = arg in flags and (i + 1 == len(argv) or argv[i + 1].startswith("-"))
        out.append(f"{arg}=true" if bare else arg)
    return out


def main() -> None:
    build()(args=normalize_argv(sys.argv[1:]), prog_name="aibridge")
