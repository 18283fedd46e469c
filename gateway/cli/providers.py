"""aibridge providers add|list|show|update|enable|disable|delete|rotate-key"""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import output
from gateway.cli.context import session, state
from gateway.models import KeyRef, ProviderCreate, ProviderPublic, ProviderUpdate
from gateway.providers import PROVIDER_TYPE_NAMES
from gateway.runtime import url_checker
from gateway.store import SYSTEM_ACTOR
from gateway.store import providers as store

app = typer.Typer(
    help="AI providers: each gets a route at /api/v2/aibridge/<name>/.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _show(p: ProviderPublic, as_json: bool) -> None:
    if as_json:
        output.print_json(p)
        return
    output.print_kv(
        f"provider {p.name}",
        [
            ("id", p.id),
            ("type", p.type),
            ("name", p.name),
            ("display name", p.display_name),
            ("enabled", p.enabled),
            ("base url", p.base_url),
            ("api keys", ", ".join(k.masked for k in p.api_keys)),
            ("route", f"/api/v2/aibridge/{p.name}/"),
            ("created", p.created_at),
            ("updated", p.updated_at),
        ],
    )


@app.command("add")
def add(
    ctx: typer.Context,
    type_: Annotated[str, typer.Option("--type", help=f"One of {', '.join(PROVIDER_TYPE_NAMES)}.")],
    name: Annotated[
        str, typer.Option(help="Unique lowercase hyphenated name, e.g. anthropic-corp.")
    ],
    api_key: Annotated[list[str], typer.Option("--api-key", help="API key (repeat for more).")],
    base_url: Annotated[
        str | None, typer.Option(help="Upstream endpoint (default per type).")
    ] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the dashboard.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a provider."""
    if type_ not in PROVIDER_TYPE_NAMES:
        output.usage_error(f"--type must be one of {', '.join(PROVIDER_TYPE_NAMES)}")
    st = state(ctx)
    keyring = st.keyring()
    data = ProviderCreate(
        type=type_,  # type: ignore[arg-type]
        name=name,
        display_name=display_name,
        enabled=not disabled,
        base_url=base_url,
        api_keys=api_key,
    )
    with session(ctx) as s:
        p = store.create_provider(
            s,
            data=data,
            keyring=keyring,
            actor=SYSTEM_ACTOR,
            check_url=url_checker(st.loaded().settings),
        )
        public = store.to_public(s, p)
    if not as_json:
        output.info(f"added provider {public.name!r}: route /api/v2/aibridge/{public.name}/")
    _show(public, as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted.")] = False,
) -> None:
    """List providers."""
    with session(ctx) as s:
        items = [store.to_public(s, p) for p in store.list_providers(s, include_deleted=deleted)]
    if as_json:
        output.print_json(items)
        return
    output.print_table(
        "providers",
        ["name", "type", "enabled", "endpoint", "keys"],
        [
            (p.name, p.type, p.enabled, p.base_url, ", ".join(k.masked for k in p.api_keys))
            for p in items
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Show one provider (keys masked)."""
    with session(ctx) as s:
        public = store.to_public(s, store.get_provider(s, ref=name))
    _show(public, as_json)


@app.command("update")
def update(
    ctx: typer.Context,
    name: str,
    base_url: Annotated[str | None, typer.Option(help="New upstream endpoint.")] = None,
    display_name: Annotated[str | None, typer.Option(help="New display name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a provider's endpoint or display name."""
    if base_url is None and display_name is None:
        output.usage_error("nothing to change: give --base-url and/or --display-name")
    _apply(ctx, name, ProviderUpdate(base_url=base_url, display_name=display_name), as_json)


def _apply(ctx: typer.Context, name: str, changes: ProviderUpdate, as_json: bool) -> None:
    st = state(ctx)
    keyring = st.keyring()
    with session(ctx) as s:
        p = store.get_provider(s, ref=name)
        store.update_provider(
            s,
            provider=p,
            changes=changes,
            keyring=keyring,
            actor=SYSTEM_ACTOR,
            check_url=url_checker(st.loaded().settings),
        )
        public = store.to_public(s, p)
    _show(public, as_json)


@app.command("enable")
def enable(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Enable a provider."""
    _apply(ctx, name, ProviderUpdate(enabled=True), as_json)


@app.command("disable")
def disable(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Disable a provider: its route answers 403 until enabled again."""
    _apply(ctx, name, ProviderUpdate(enabled=False), as_json)


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    name: str,
    api_key: Annotated[list[str], typer.Option("--api-key", help="New key(s); replaces all.")],
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="Keep the old keys after the new.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace a provider's API keys (the first one is used)."""
    refs = [KeyRef(api_key=k) for k in api_key]
    if keep_old:
        with session(ctx) as s:
            p = store.get_provider(s, ref=name)
            refs += [KeyRef(id=k.id) for k in store.provider_keys(s, provider_id=p.id)]
    _apply(ctx, name, ProviderUpdate(api_keys=refs), as_json)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a provider (soft delete; the name can be reused)."""
    if not yes and not typer.confirm(f"Delete provider {name!r}?", default=False, err=True):
        output.fail("not deleted")
    with session(ctx) as s:
        store.delete_provider(s, provider=store.get_provider(s, ref=name), actor=SYSTEM_ACTOR)
    output.info(f"deleted provider {name!r}")
