"""aibridge users create|list|disable|enable  and  aibridge tokens create|list|revoke"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from gateway.cli import output
from gateway.cli.context import session
from gateway.store import SYSTEM_ACTOR
from gateway.store import users as store
from gateway.units import parse_duration

users_app = typer.Typer(help="Gateway users (admin, auditor, member).", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Users' gateway tokens (shown once, stored hashed).", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@users_app.command("create")
def create(
    ctx: typer.Context,
    username: str,
    role: Annotated[str, typer.Option(help="admin, auditor or member.")] = "member",
    as_json: JsonOpt = False,
) -> None:
    """Create a user."""
    with session(ctx) as s:
        user = store.user_public(
            store.create_user(s, username=username, role=role, actor=SYSTEM_ACTOR)
        )
    if as_json:
        output.print_json(user)
    else:
        output.say(f"created user {user.username!r} ({user.role})")


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users."""
    with session(ctx) as s:
        users = [store.user_public(u) for u in store.list_users(s)]
    if as_json:
        output.print_json(users)
        return
    output.print_table(
        "users",
        ["username", "role", "disabled", "created"],
        [(u.username, u.role, u.disabled, u.created_at) for u in users],
    )


def _set_disabled(ctx: typer.Context, username: str, disabled: bool) -> None:
    with session(ctx) as s:
        store.update_user(
            s, user=store.get_user(s, username=username), actor=SYSTEM_ACTOR, disabled=disabled
        )
    output.say(f"user {username!r} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def disable(ctx: typer.Context, username: str) -> None:
    """Disable a user: their tokens stop working."""
    _set_disabled(ctx, username, True)


@users_app.command("enable")
def enable(ctx: typer.Context, username: str) -> None:
    """Enable a user again."""
    _set_disabled(ctx, username, False)


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="Owner of the token.")],
    name: Annotated[str, typer.Option(help="A label, e.g. laptop.")] = "",
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d (default: none).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token for a user. The token is printed once."""
    expires = None
    if expires_in is not None:
        try:
            lifetime = parse_duration(expires_in)
        except ValueError as exc:
            output.usage_error(f"--expires-in: {exc}")
        if lifetime <= timedelta(0):
            output.usage_error("--expires-in must be positive (omit it for no expiry)")
        expires = datetime.now(UTC) + lifetime
    with session(ctx) as s:
        owner = store.get_user(s, username=user)
        created = store.create_token(
            s, user=owner, name=name, expires_at=expires, actor=SYSTEM_ACTOR
        )
    if as_json:
        output.print_json(created)
        return
    output.info(f"token {created.id} for {user!r} (shown once):")
    output.say(created.token)


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never the tokens themselves)."""
    with session(ctx) as s:
        owner = store.get_user(s, username=user) if user else None
        items = [store.token_public(t, name) for t, name in store.list_tokens(s, user=owner)]
    if as_json:
        output.print_json(items)
        return
    columns = ["id", "user", "name", "hint", "expires", "last used", "revoked"]
    output.print_table(
        "tokens",
        columns,
        [
            (t.id, t.username, t.name, t.hint, t.expires_at, t.last_used_at, t.revoked_at)
            for t in items
        ],
    )


@tokens_app.command("revoke")
def revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token by id."""
    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        output.usage_error(f"not a token id: {token_id!r}")
    with session(ctx) as s:
        store.revoke_token(s, token=store.get_token(s, token_id=tid), actor=SYSTEM_ACTOR)
    output.say(f"revoked token {tid}")
