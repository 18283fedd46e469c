"""aibridge retention purge [--dry-run] [--json]"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import output
from gateway.cli.context import state
from gateway.retention import purge
from gateway.units import parse_duration
from schema.types import utcnow

app = typer.Typer(
    help="Data retention: delete interceptions and dumps older than the retention setting.",
    no_args_is_help=True,
)


@app.command("purge")
def purge_(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
    retention: Annotated[
        str | None,
        typer.Option("--retention", help="Use this instead of the retention setting (e.g. 30d)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the retention purge once and report what was (or would be) deleted."""
    st = state(ctx)
    settings = st.loaded().settings
    try:
        keep = parse_duration(retention) if retention is not None else settings.retention_delta
    except ValueError as exc:
        output.usage_error(str(exc))
    dump_dir = Path(settings.dump_dir) if settings.dump_dir else None
    result = purge(st.engine(), retention=keep, now=utcnow(), dump_dir=dump_dir, dry_run=dry_run)
    if as_json:
        output.print_json(result)
        return
    if result.cutoff is None:
        output.say("retention is 0: everything is kept, nothing was deleted")
        return
    if result.skipped:
        output.info(
            "another process is purging the database right now; only dump files were considered"
        )
    verb = "would delete" if dry_run else "deleted"
    output.print_kv(
        f"retention purge: {verb} (started before {output.fmt(result.cutoff)})",
        [
            ("interceptions", result.interceptions),
            ("token_usages", result.token_usages),
            ("prompt_usages", result.prompt_usages),
            ("tool_usages", result.tool_usages),
            ("model_thoughts", result.model_thoughts),
            ("dump_files", result.dump_files),
        ],
    )
