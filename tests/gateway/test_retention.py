"""gateway.retention on SQLite and PostgreSQL, with a controlled clock."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import Session
from typer.testing import CliRunner

from gateway.cli.app import make_app
from gateway.cli.retention import app as retention_app
from gateway.dumps import DumpWriter
from gateway.redaction import SecretScrubber
from gateway.retention import ADVISORY_LOCK_KEY, RetentionScheduler, prune_dumps, purge
from gateway.settings import load_settings
from schema.models import Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEEP = timedelta(days=60)
CHILDREN = (TokenUsage, PromptUsage, ToolUsage, ModelThought)


def add(engine: Engine, started: datetime, *, ended: bool = True, children: int = 1) -> uuid.UUID:
    iid = uuid.uuid4()
    with Session(engine) as s:
        s.add(
            Interception(
                id=iid,
                provider_type="anthropic",
                provider_name="anthropic",
                started_at=started,
                ended_at=started + timedelta(seconds=2) if ended else None,
                status="completed" if ended else None,
            )
        )
        s.flush()
        for _ in range(children):
            common: dict[str, Any] = {"interception_id": iid, "created_at": started}
            s.add(TokenUsage(id=uuid.uuid4(), input_tokens=1, **common))
            s.add(PromptUsage(id=uuid.uuid4(), prompt="p", **common))
            s.add(ToolUsage(id=uuid.uuid4(), tool="t", input="{}", **common))
            s.add(ModelThought(id=uuid.uuid4(), content="c", **common))
        s.commit()
    return iid


def ids(engine: Engine) -> set[uuid.UUID]:
    with Session(engine) as s:
        return set(s.execute(select(Interception.id)).scalars())  # type: ignore[call-overload]


def child_counts(engine: Engine) -> list[int]:
    with Session(engine) as s:
        return [s.execute(select(func.count()).select_from(m)).scalar_one() for m in CHILDREN]


def test_boundary_one_second_each_side(engine: Engine) -> None:
    old = add(engine, NOW - KEEP - timedelta(seconds=1))
    young = add(engine, NOW - KEEP + timedelta(seconds=1))
    result = purge(engine, retention=KEEP, now=NOW)
    assert ids(engine) == {young}
    assert old not in ids(engine)
    assert (
        result.interceptions,
        result.token_usages,
        result.prompt_usages,
        result.tool_usages,
        result.model_thoughts,
    ) == (1, 1, 1, 1, 1)
    assert result.cutoff == NOW - KEEP and not result.skipped
    assert child_counts(engine) == [1, 1, 1, 1]  # the young one's rows are untouched


def test_open_interceptions_are_never_deleted(engine: Engine) -> None:
    still_open = add(engine, NOW - timedelta(days=400), ended=False)
    result = purge(engine, retention=KEEP, now=NOW)
    assert ids(engine) == {still_open} and result.interceptions == 0
    assert child_counts(engine) == [1, 1, 1, 1]


def test_children_go_with_their_interception(engine: Engine) -> None:
    add(engine, NOW - timedelta(days=90), children=3)
    kept = add(engine, NOW - timedelta(days=1), children=2)
    result = purge(engine, retention=KEEP, now=NOW)
    assert (result.interceptions, result.token_usages, result.model_thoughts) == (1, 3, 3)
    assert ids(engine) == {kept} and child_counts(engine) == [2, 2, 2, 2]


def test_batches_and_idempotent_reruns(engine: Engine) -> None:
    for i in range(25):
        add(engine, NOW - timedelta(days=61, minutes=i), children=1)
    kept = add(engine, NOW)
    commits: list[int] = []

    def count_commit(_conn: Any) -> None:
        commits.append(1)

    event.listen(engine, "commit", count_commit)
    try:
        result = purge(engine, retention=KEEP, now=NOW, batch_size=10)
    finally:
        event.remove(engine, "commit", count_commit)
    assert result.interceptions == 25 and result.token_usages == 25
    assert len(commits) >= 3  # 10 + 10 + 5: one transaction per batch
    assert ids(engine) == {kept}
    again = purge(engine, retention=KEEP, now=NOW, batch_size=10)
    assert (again.interceptions, again.rows) == (0, 0)
    assert ids(engine) == {kept}


def test_retention_zero_keeps_everything(engine: Engine, tmp_path: Path) -> None:
    add(engine, NOW - timedelta(days=3650))
    dumps = tmp_path / "dumps"
    old_dump(dumps, NOW - timedelta(days=3650))
    result = purge(engine, retention=timedelta(0), now=NOW, dump_dir=dumps)
    assert result.cutoff is None and result.rows == 0 and result.dump_files == 0
    assert len(ids(engine)) == 1 and len(list(dumps.rglob("*.http"))) == 2


def test_dry_run_counts_and_deletes_nothing(engine: Engine, tmp_path: Path) -> None:
    add(engine, NOW - timedelta(days=70), children=2)
    add(engine, NOW - timedelta(days=1))
    dumps = tmp_path / "dumps"
    old_dump(dumps, NOW - timedelta(days=70))
    result = purge(engine, retention=KEEP, now=NOW, dump_dir=dumps, dry_run=True)
    assert (
        result.interceptions,
        result.token_usages,
        result.tool_usages,
        result.dump_files,
        result.dry_run,
    ) == (1, 2, 2, 2, True)
    assert len(ids(engine)) == 2 and child_counts(engine) == [3, 3, 3, 3]
    assert len(list(dumps.rglob("*.http"))) == 2


def old_dump(base: Path, when: datetime, provider: str = "anthropic") -> None:
    dump = DumpWriter(base).open(
        provider=provider,
        interception_id=uuid.uuid4(),
        passthrough=False,
        when=when,
        scrubber=SecretScrubber(),
    )
    assert dump is not None
    dump.request(method="GET", target="/", version="HTTP/1.1", headers=[], body=b"", ctype="")
    dump.response_head(version="HTTP/1.1", status=200, reason="OK", headers=[])
    dump.close()


def test_dump_files_older_than_retention_are_removed(engine: Engine, tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    old_dump(dumps, NOW - KEEP - timedelta(seconds=1))
    old_dump(dumps, NOW - KEEP + timedelta(seconds=1), provider="openai")
    (dumps / "anthropic" / "keep-me.txt").write_text("not a dump")
    result = purge(engine, retention=KEEP, now=NOW, dump_dir=dumps)
    assert result.dump_files == 2
    left = sorted(p.name for p in dumps.rglob("*") if p.is_file())
    assert len(left) == 3 and "keep-me.txt" in left
    assert all(n.endswith(".txt") or (dumps / "openai" / n).exists() for n in left)


def test_prune_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    old_dump(outside, NOW - timedelta(days=999))
    base = tmp_path / "dumps"
    base.mkdir()
    (base / "anthropic").symlink_to(outside / "anthropic")
    assert prune_dumps(base, NOW) == 0
    assert len(list(outside.rglob("*.http"))) == 2


@pytest.mark.postgres
def test_postgres_run_is_skipped_while_another_process_purges(pg_url: str) -> None:
    from gateway.db import make_engine, prepare_database

    engine = make_engine(pg_url)
    prepare_database(engine)
    try:
        add(engine, NOW - timedelta(days=100))
        with engine.connect() as other:
            other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            result = purge(engine, retention=KEEP, now=NOW)
            assert result.skipped and result.interceptions == 0 and len(ids(engine)) == 1
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            other.commit()
        result = purge(engine, retention=KEEP, now=NOW)
        assert not result.skipped and result.interceptions == 1 and ids(engine) == set()
    finally:
        engine.dispose()


def scheduler(
    engine: Engine, tmp_path: Path, retention: str, clock: Callable[[], datetime]
) -> RetentionScheduler:
    settings = load_settings(
        {"retention": retention, "retention_interval": "50ms", "dump_dir": str(tmp_path / "dumps")},
        environ={},
    ).settings
    return RetentionScheduler(engine, settings, now=clock, initial_delay=0)


def test_scheduler_purges_on_its_clock_and_stops(engine: Engine, tmp_path: Path) -> None:
    moments = [NOW]
    add(engine, NOW + timedelta(days=5))  # "in the future" for the clock's first moments
    sched = scheduler(engine, tmp_path, "1d", lambda: moments[-1])
    sched.start()
    try:
        deadline = time.monotonic() + 10
        while sched.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sched.runs >= 2 and len(ids(engine)) == 1
        moments.append(NOW + timedelta(days=7))
        while ids(engine) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ids(engine) == set()
    finally:
        sched.stop()
    runs = sched.runs
    time.sleep(0.2)
    assert sched.runs == runs  # stopped


def test_scheduler_with_retention_zero_never_starts(engine: Engine, tmp_path: Path) -> None:
    sched = scheduler(engine, tmp_path, "0", lambda: NOW)
    sched.start()
    assert sched._thread is None and not sched.enabled
    sched.stop()


def test_scheduler_survives_a_database_failure(tmp_path: Path) -> None:
    from gateway.db import make_engine

    broken = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    sched = scheduler(broken, tmp_path, "1d", lambda: NOW)
    assert sched.run_once() is None and sched.failures == 1
    broken.dispose()


def cli() -> typer.Typer:
    app = make_app()
    if "retention" not in {g.name for g in app.registered_groups}:
        app.add_typer(retention_app, name="retention")
    return app


def test_cli_purge_dry_run_then_purge(db_url: str, tmp_path: Path) -> None:
    from gateway.db import make_engine, prepare_database

    engine = make_engine(db_url)
    prepare_database(engine)
    try:
        now = datetime.now(UTC)
        add(engine, now - timedelta(days=61), children=2)
        add(engine, now - timedelta(days=59))
        root = ["--database-url", db_url, "--data-dir", str(tmp_path / "data")]
        env = {"AI_GATEWAY_RETENTION": "60d"}
        run = CliRunner().invoke(
            cli(),
            [*root, "retention", "purge", "--dry-run", "--json"],
            env=env,
            catch_exceptions=False,
        )
        assert run.exit_code == 0, run.output
        counted = json.loads(run.stdout)
        assert (
            counted["interceptions"],
            counted["token_usages"],
            counted["prompt_usages"],
            counted["tool_usages"],
            counted["model_thoughts"],
            counted["dry_run"],
        ) == (1, 2, 2, 2, 2, True)
        assert len(ids(engine)) == 2
        run = CliRunner().invoke(
            cli(), [*root, "retention", "purge", "--json"], env=env, catch_exceptions=False
        )
        assert run.exit_code == 0 and json.loads(run.stdout)["interceptions"] == 1
        assert len(ids(engine)) == 1
        run = CliRunner().invoke(
            cli(), [*root, "retention", "purge"], env=env, catch_exceptions=False
        )
        assert run.exit_code == 0 and "interceptions" in run.stdout
        bad = CliRunner().invoke(
            cli(), [*root, "retention", "purge", "--retention", "soon"], catch_exceptions=False
        )
        assert bad.exit_code == 2
    finally:
        engine.dispose()
