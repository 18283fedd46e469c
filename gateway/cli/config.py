"""aibridge config show  and  aibridge keys generate|rotate"""

from __future__ import annotations

from typing import Annotated

import typer

from gateway import settings as gs
from gateway.cli import output
from gateway.cli.context import session, state
from gateway.crypto import generate_key
from gateway.store.providers import rotate_encryption

config_app = typer.Typer(help="Effective settings.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys for provider API keys at rest.", no_args_is_help=True)


@config_app.command("show")
def show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Print every setting, its value (secrets masked) and where it came from."""
    loaded = state(ctx).loaded()
    rows = [
        (
            f,
            gs.display_value(loaded, f),
            loaded.sources[f],
            gs.flag_name(f),
            gs.env_name(f),
            gs.option_name(f),
        )
        for f in gs.field_names()
    ]
    if as_json:
        output.print_json(
            {
                r[0]: {"value": r[1], "source": r[2], "flag": r[3], "env": r[4], "option": r[5]}
                for r in rows
            }
        )
        return
    output.print_table(
        f"settings (config file: {loaded.config_file or 'none'})",
        ["setting", "value", "source", "flag", "env", "mitmproxy option"],
        rows,
    )


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key for AI_GATEWAY_ENCRYPTION_KEYS."""
    output.say(generate_key())


@keys_app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Re-encrypt every provider key with the first configured encryption key."""
    keyring = state(ctx).keyring()
    with session(ctx) as s:
        count = rotate_encryption(s, keyring=keyring)
    output.say(f"re-encrypted {count} provider key(s)")
