"""gateway.settings: flag > env > YAML > default, each value's source, readable errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.settings import (
    display_value,
    env_name,
    field_names,
    flag_name,
    hide_url_password,
    load_settings,
    option_name,
    yaml_key,
)


@pytest.fixture(autouse=True)
def _no_default_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory, so no ./aibridge.yaml is picked up by accident."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


def write_yaml(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_with_an_empty_environment() -> None:
    loaded = load_settings(environ={})
    s = loaded.settings
    assert (s.enabled, s.data_dir, s.database_url, s.encryption_keys) == (
        True,
        Path("data"),
        "",
        None,
    )
    assert (s.retention, s.retention_interval, s.log_level, s.max_request_body) == (
        "60d",
        "10m",
        "info",
        "32MiB",
    )
    assert (s.upstream_timeout, s.allow_private_upstreams, s.byok, s.journal_max_bytes) == (
        "600s",
        False,
        True,
        "512MiB",
    )
    assert (s.reload_interval, s.flow_limit, s.http2, s.dump_dir) == ("1s", 1000, False, "")
    assert (s.log_human, s.log_json, s.structured_logging) == ("/dev/stderr", "", False)
    assert set(loaded.sources.values()) == {"default"}
    assert set(loaded.sources) == set(field_names())
    assert loaded.config_file is None


def test_explicit_environ_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_RETENTION", "5d")
    monkeypatch.setenv("AI_GATEWAY_LOG_LEVEL", "debug")
    loaded = load_settings(environ={})
    assert loaded.settings.retention == "60d"
    assert loaded.settings.log_level == "info"
    assert loaded.sources["retention"] == "default"


def test_without_environ_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_RETENTION", "5d")
    loaded = load_settings()
    assert loaded.settings.retention == "5d"
    assert loaded.sources["retention"] == "env"


def test_precedence_flag_env_yaml_default(tmp_path: Path) -> None:
    cfg = write_yaml(
        tmp_path, "ai_gateway:\n  retention: 30d\n  retention_interval: 5m\n  log_level: warning\n"
    )
    env = {"AI_GATEWAY_RETENTION": "20d", "AI_GATEWAY_RETENTION_INTERVAL": "2m"}
    loaded = load_settings({"retention": "10d"}, config_file=cfg, environ=env)
    s = loaded.settings
    assert (s.retention, s.retention_interval, s.log_level, s.upstream_timeout) == (
        "10d",
        "2m",
        "warning",
        "600s",
    )
    assert loaded.sources["retention"] == "flag"
    assert loaded.sources["retention_interval"] == "env"
    assert loaded.sources["log_level"] == f"yaml:{cfg}"
    assert loaded.sources["upstream_timeout"] == "default"
    assert loaded.config_file == cfg


@pytest.mark.parametrize(
    ("flag", "env", "yaml", "value", "source"),
    [
        ("1d", "2d", "3d", "1d", "flag"),
        (None, "2d", "3d", "2d", "env"),
        (None, None, "3d", "3d", "yaml"),
        (None, None, None, "60d", "default"),
        ("1d", None, "3d", "1d", "flag"),
        ("1d", "2d", None, "1d", "flag"),
    ],
)
def test_precedence_table(
    tmp_path: Path, flag: str | None, env: str | None, yaml: str | None, value: str, source: str
) -> None:
    cfg = write_yaml(tmp_path, f"ai_gateway:\n  retention: {yaml}\n" if yaml else "ai_gateway:\n")
    environ = {"AI_GATEWAY_RETENTION": env} if env else {}
    loaded = load_settings({"retention": flag}, config_file=cfg, environ=environ)
    assert loaded.settings.retention == value
    assert loaded.sources["retention"] == (f"yaml:{cfg}" if source == "yaml" else source)


def test_config_file_from_env(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "ai_gateway:\n  flow_limit: 7\n")
    loaded = load_settings(environ={"AI_GATEWAY_CONFIG": str(cfg)})
    assert loaded.settings.flow_limit == 7
    assert loaded.sources["flow_limit"] == f"yaml:{cfg}"
    assert loaded.config_file == cfg


def test_explicit_config_file_beats_env_config(tmp_path: Path) -> None:
    a = write_yaml(tmp_path, "ai_gateway:\n  flow_limit: 1\n", "a.yaml")
    b = write_yaml(tmp_path, "ai_gateway:\n  flow_limit: 2\n", "b.yaml")
    loaded = load_settings(config_file=a, environ={"AI_GATEWAY_CONFIG": str(b)})
    assert loaded.settings.flow_limit == 1


def test_default_config_file_in_working_directory() -> None:
    Path("aibridge.yaml").write_text("ai_gateway:\n  http2: true\n")
    loaded = load_settings(environ={})
    assert loaded.settings.http2 is True
    assert loaded.sources["http2"] == "yaml:aibridge.yaml"


def test_api_dump_dir_maps_to_dump_dir(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "ai_gateway:\n  api_dump_dir: /tmp/dumps\n")
    loaded = load_settings(config_file=cfg, environ={})
    assert loaded.settings.dump_dir == "/tmp/dumps"
    assert loaded.sources["dump_dir"] == f"yaml:{cfg}"
    assert yaml_key("dump_dir") == "api_dump_dir"


def test_yaml_dump_dir_under_its_field_name_is_unknown(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "ai_gateway:\n  dump_dir: /tmp/dumps\n")
    with pytest.raises(ValueError, match=r"unknown keys under ai_gateway: dump_dir"):
        load_settings(config_file=cfg, environ={})


def test_yaml_numbers_for_text_settings(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "ai_gateway:\n  retention: 0\n  max_request_body: 1048576\n")
    s = load_settings(config_file=cfg, environ={}).settings
    assert s.retention == "0" and s.retention_delta == timedelta(0)
    assert s.max_request_body_bytes == 1048576


def test_yaml_null_values_fall_through(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "ai_gateway:\n  retention:\n")
    loaded = load_settings(config_file=cfg, environ={})
    assert loaded.settings.retention == "60d"
    assert loaded.sources["retention"] == "default"


def test_other_yaml_sections_are_ignored(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "other_tool:\n  anything: 1\nai_gateway:\n  byok: false\n")
    assert load_settings(config_file=cfg, environ={}).settings.byok is False


def test_empty_yaml_file(tmp_path: Path) -> None:
    cfg = write_yaml(tmp_path, "")
    loaded = load_settings(config_file=cfg, environ={})
    assert set(loaded.sources.values()) == {"default"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", r"expected a mapping with an 'ai_gateway:' key"),
        ("just a string\n", r"expected a mapping"),
        ("ai_gateway: [1, 2]\n", r"'ai_gateway:' must be a mapping"),
        (
            "ai_gateway:\n  retention: 1d\n  colour: blue\n  bogus: 1\n",
            r"unknown keys under ai_gateway: bogus, colour",
        ),
        ("ai_gateway:\n  1: x\n  zz: y\n", r"unknown keys under ai_gateway: 1, zz"),
        ("ai_gateway: {retention: [\n", r"is not valid YAML"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, message: str) -> None:
    cfg = write_yaml(tmp_path, text)
    with pytest.raises(ValueError, match=message) as exc:
        load_settings(config_file=cfg, environ={})
    assert str(cfg) in str(exc.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read config file .*nope.yaml"):
        load_settings(config_file=tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize(
    ("env", "field", "fragment"),
    [
        ({"AI_GATEWAY_RETENTION": "abc"}, "retention", "invalid duration 'abc'"),
        ({"AI_GATEWAY_RETENTION_INTERVAL": "5"}, "retention_interval", "invalid duration '5'"),
        ({"AI_GATEWAY_UPSTREAM_TIMEOUT": "soon"}, "upstream_timeout", "invalid duration"),
        ({"AI_GATEWAY_RELOAD_INTERVAL": "-1s"}, "reload_interval", "invalid duration"),
        ({"AI_GATEWAY_MAX_REQUEST_BODY": "lots"}, "max_request_body", "invalid size 'lots'"),
        ({"AI_GATEWAY_JOURNAL_MAX_BYTES": "1ib"}, "journal_max_bytes", "invalid size"),
        ({"AI_GATEWAY_LOG_LEVEL": "loud"}, "log_level", "debug, info, warning or error"),
        ({"AI_GATEWAY_ENABLED": "maybe"}, "enabled", "valid boolean"),
        ({"AI_GATEWAY_FLOW_LIMIT": "many"}, "flow_limit", "valid integer"),
    ],
)
def test_invalid_env_values(env: dict[str, str], field: str, fragment: str) -> None:
    with pytest.raises(ValueError) as exc:
        load_settings(environ=env)
    message = str(exc.value)
    assert message.startswith(f"invalid settings: {field}: ")
    assert fragment in message


def test_invalid_flag_and_yaml_values_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^invalid settings: retention: .*'abc'"):
        load_settings({"retention": "abc"}, environ={})
    cfg = write_yaml(tmp_path, "ai_gateway:\n  max_request_body: lots\n")
    with pytest.raises(ValueError, match=r"^invalid settings: max_request_body: .*'lots'"):
        load_settings(config_file=cfg, environ={})


def test_two_invalid_values_are_both_reported() -> None:
    with pytest.raises(ValueError) as exc:
        load_settings(environ={"AI_GATEWAY_RETENTION": "abc", "AI_GATEWAY_LOG_LEVEL": "x"})
    assert "retention:" in str(exc.value) and "log_level:" in str(exc.value)


def test_unknown_override() -> None:
    with pytest.raises(ValueError, match=r"unknown settings: colour"):
        load_settings({"colour": "blue"}, environ={})


def test_none_overrides_are_not_flags() -> None:
    loaded = load_settings({"retention": None}, environ={"AI_GATEWAY_RETENTION": "3d"})
    assert loaded.settings.retention == "3d"
    assert loaded.sources["retention"] == "env"


@pytest.mark.parametrize(
    ("text", "value"),
    [("false", False), ("0", False), ("no", False), ("TRUE", True), ("1", True), ("yes", True)],
)
def test_env_booleans(text: str, value: bool) -> None:
    assert load_settings(environ={"AI_GATEWAY_BYOK": text}).settings.byok is value


def test_env_names_are_case_insensitive_and_prefixed() -> None:
    loaded = load_settings(
        environ={"ai_gateway_http2": "true", "HTTP2": "false", "GATEWAY_FLOW_LIMIT": "3"}
    )
    assert loaded.settings.http2 is True
    assert loaded.settings.flow_limit == 1000


def test_log_level_is_normalised() -> None:
    loaded = load_settings(environ={"AI_GATEWAY_LOG_LEVEL": "WARNING"})
    assert loaded.settings.log_level == "warning"


def test_derived_values(tmp_path: Path) -> None:
    s = load_settings(
        {
            "data_dir": str(tmp_path),
            "retention": "1d12h",
            "upstream_timeout": "90s",
            "reload_interval": "250ms",
            "journal_max_bytes": "1MiB",
        },
        environ={},
    ).settings
    assert s.retention_delta == timedelta(hours=36)
    assert s.retention_interval_delta == timedelta(minutes=10)
    assert s.upstream_timeout_seconds == 90.0
    assert s.reload_interval_seconds == 0.25
    assert s.max_request_body_bytes == 32 * 1024**2
    assert s.journal_max_bytes_int == 1024**2
    assert s.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'aibridge.db'}"
    pg = "postgresql+psycopg://u@h/db"
    assert load_settings({"database_url": pg}, environ={}).settings.effective_database_url == pg


def test_settings_are_frozen() -> None:
    s = load_settings(environ={}).settings
    with pytest.raises(ValueError):
        s.retention = "1d"  # type: ignore[misc]


def test_display_value_masks_encryption_keys() -> None:
    k1 = "zaT0g3tZMtnXsUZcr6qGw1TMY6vNzZGrKlLikvc6I94="
    k2 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef0="
    loaded = load_settings(environ={"AI_GATEWAY_ENCRYPTION_KEYS": f"{k1}, {k2},"})
    shown = display_value(loaded, "encryption_keys")
    assert shown == "zaT0...I94=,AbCd...ef0="
    assert k1 not in shown and k2 not in shown
    assert loaded.settings.encryption_keys is not None
    assert k1 not in repr(loaded.settings) and k1 not in str(loaded.settings)
    assert display_value(load_settings(environ={}), "encryption_keys") == ""


def test_display_value_hides_a_database_password() -> None:
    url = "postgresql+psycopg://aib:s3cr3t-pw@db.internal:5432/aibridge?sslmode=require"
    loaded = load_settings(environ={"AI_GATEWAY_DATABASE_URL": url})
    shown = display_value(loaded, "database_url")
    assert shown == "postgresql+psycopg://aib:***@db.internal:5432/aibridge?sslmode=require"
    assert display_value(loaded, "retention") == "60d"
    assert display_value(loaded, "enabled") == "True"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:////var/lib/aib.db", "sqlite:////var/lib/aib.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@h/db?password=pw2", "postgresql://u:***@h/db?password=***"),
        ("", ""),
    ],
)
def test_hide_url_password(url: str, shown: str) -> None:
    assert hide_url_password(url) == shown


def test_names_per_source() -> None:
    assert flag_name("retention") == "--ai-gateway-retention"
    assert flag_name("log_level") == "--log-level"
    assert flag_name("allow_private_upstreams") == "--ai-gateway-allow-private-upstreams"
    assert env_name("max_request_body") == "AI_GATEWAY_MAX_REQUEST_BODY"
    assert option_name("byok") == "ai_gateway_byok"


@pytest.mark.parametrize(
    "value,expected", [("token", "token"), (" Public ", "public"), ("OFF", "off")]
)
def test_metrics_modes(value: str, expected: str) -> None:
    assert load_settings(environ={"AI_GATEWAY_METRICS": value}).settings.metrics == expected


def test_unknown_metrics_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="metrics must be token, public or off"):
        load_settings(environ={"AI_GATEWAY_METRICS": "open"})
