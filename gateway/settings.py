"""Settings: one model, four sources, each value's source known.

Precedence, highest first: command-line flag or mitmproxy `--set` option, `AI_GATEWAY_*`
environment variable, the YAML file (keys under `ai_gateway:`), the default. Nothing is read
at import time: call `load_settings()` in an entry point and pass the result down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.units import parse_duration, parse_size

ENV_PREFIX = "AI_GATEWAY_"
YAML_SECTION = "ai_gateway"
DEFAULT_CONFIG_FILE = "aibridge.yaml"


class Settings(BaseSettings):
    """Every setting of the gateway. Field docs are the help text of flags and options."""

    # coerce_numbers_to_str: YAML `retention: 0` or `max_request_body: 1048576` are numbers.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, coerce_numbers_to_str=True
    )

    enabled: bool = Field(True, description="Serve the AI gateway routes (false: they answer 404).")
    data_dir: Path = Field(
        Path("data"), description="Directory for the SQLite file, key file, journal."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite in the data dir. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    encryption_keys: SecretStr | None = Field(
        None,
        description="Comma-separated base64 AES-256 keys; the first encrypts, all decrypt. "
        "Empty: a key file (0600) in the data dir.",
    )
    dump_dir: str = Field("", description="Write request/response dumps here (empty: off).")
    retention: str = Field(
        "60d", description="Keep interceptions this long (e.g. 90d, 12h; 0: forever)."
    )
    retention_interval: str = Field("10m", description="How often the retention purge runs.")
    structured_logging: bool = Field(
        False, description="Emit one 'interception log' record per event."
    )
    log_human: str = Field(
        "/dev/stderr", description="Human-readable log destination (empty: off)."
    )
    log_json: str = Field(
        "", description="JSON-lines log destination, e.g. /dev/stderr (empty: off)."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    max_request_body: str = Field(
        "32MiB", description="Largest request body accepted (413 beyond)."
    )
    max_prompt_chars: int = Field(
        262144,
        description="Longest prompt recorded; longer ones are cut with a marker (0: no limit).",
    )
    upstream_timeout: str = Field("600s", description="Time allowed for upstream response headers.")
    allow_private_upstreams: bool = Field(
        False, description="Allow provider base URLs on loopback/private/link-local addresses."
    )
    byok: bool = Field(
        True,
        description="Let a client send its own provider key when it authenticates to the gateway "
        "with X-AIBridge-Token.",
    )
    journal_max_bytes: str = Field(
        "512MiB", description="Records waiting for the database beyond this: answer 503."
    )
    reload_interval: str = Field("1s", description="How often to poll for configuration changes.")
    flow_limit: int = Field(
        1000, description="mitmweb: keep only the last N flows in the view (0: unlimited)."
    )
    http2: bool = Field(False, description="Offer HTTP/2 to clients and upstreams.")
    metrics: str = Field(
        "token",
        description="GET /metrics (Prometheus): 'token' needs an admin or auditor token, "
        "'public' needs none, 'off' disables it.",
    )

    @field_validator("retention", "retention_interval", "upstream_timeout", "reload_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("max_request_body", "journal_max_bytes")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("token", "public", "off"):
            raise ValueError("metrics must be token, public or off")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be debug, info, warning or error")
        return value.lower()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values load_settings() passes: it reads the environment it is given itself,
        # so an explicit `environ=` is never mixed with the process environment.
        return (init_settings,)

    # Derived, typed views -------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'aibridge.db').resolve()}"

    @cached_property
    def retention_delta(self) -> timedelta:
        return parse_duration(self.retention)

    @cached_property
    def retention_interval_delta(self) -> timedelta:
        return parse_duration(self.retention_interval)

    @cached_property
    def upstream_timeout_seconds(self) -> float:
        return parse_duration(self.upstream_timeout).total_seconds()

    @cached_property
    def reload_interval_seconds(self) -> float:
        return parse_duration(self.reload_interval).total_seconds()

    @cached_property
    def max_request_body_bytes(self) -> int:
        return parse_size(self.max_request_body)

    @cached_property
    def journal_max_bytes_int(self) -> int:
        return parse_size(self.journal_max_bytes)


# Names per source. Flags and options are derived from the field name unless listed here.
_YAML_ALIASES = {"dump_dir": "api_dump_dir"}
_FLAG_OVERRIDES = {"log_human": "--log-human", "log_json": "--log-json", "log_level": "--log-level"}
SECRET_FIELDS = frozenset({"encryption_keys"})


def field_names() -> tuple[str, ...]:
    return tuple(Settings.model_fields)


def flag_name(field: str) -> str:
    return _FLAG_OVERRIDES.get(field, "--ai-gateway-" + field.replace("_", "-"))


def option_name(field: str) -> str:
    """The mitmproxy option that carries this setting (`--set ai_gateway_<field>=...`)."""
    return "ai_gateway_" + field


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def yaml_key(field: str) -> str:
    return _YAML_ALIASES.get(field, field)


def field_help(field: str) -> str:
    return Settings.model_fields[field].description or field


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: Mapping[str, str]
    """field -> "flag", "env", "yaml:<path>" or "default"."""
    config_file: Path | None


def find_config_file(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read the `ai_gateway:` section of a YAML file, mapping its keys to field names."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"config file {path} is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"config file {path}: expected a mapping with an '{YAML_SECTION}:' key")
    section = document.get(YAML_SECTION) or {}
    if not isinstance(section, dict):
        raise ValueError(f"config file {path}: '{YAML_SECTION}:' must be a mapping")
    by_key = {yaml_key(f): f for f in field_names()}
    unknown = sorted(str(k) for k in section if k not in by_key)
    if unknown:
        raise ValueError(
            f"config file {path}: unknown keys under {YAML_SECTION}: {', '.join(unknown)}"
        )
    return {by_key[k]: v for k, v in section.items() if v is not None}


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    source = EnvSettingsSource(Settings, case_sensitive=False, env_prefix=ENV_PREFIX)
    source.env_vars = {k.lower(): v for k, v in environ.items()}
    return {k: v for k, v in source().items() if k in Settings.model_fields}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Resolve the settings from flags/options (`overrides`), env, YAML and defaults.

    Raises ValueError with a readable message for an invalid value in any source.
    """
    env = dict(os.environ if environ is None else environ)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(flags) - set(field_names()))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    path = find_config_file(config_file, env)
    from_yaml = read_yaml(path) if path else {}
    from_env = _env_values(env)
    merged = {**from_yaml, **from_env, **flags}
    try:
        settings = Settings.model_validate(merged)
    except ValueError as exc:
        raise ValueError(_describe_validation_error(exc)) from exc
    sources: dict[str, str] = {}
    for name in field_names():
        if name in flags:
            sources[name] = "flag"
        elif name in from_env:
            sources[name] = "env"
        elif name in from_yaml:
            sources[name] = f"yaml:{path}"
        else:
            sources[name] = "default"
    return LoadedSettings(settings=settings, sources=sources, config_file=path)


def _describe_validation_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid settings: " + "; ".join(parts)


def display_value(loaded: LoadedSettings, field: str) -> str:
    """The value of `field` for humans, with secrets masked (keys, a database password)."""
    value = getattr(loaded.settings, field)
    if field in SECRET_FIELDS:
        if value is None:
            return ""
        from gateway.redaction import mask_secret

        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        return ",".join(mask_secret(k) for k in keys)
    if field == "database_url":
        return hide_url_password(str(value))
    return str(value)


def hide_url_password(url: str) -> str:
    """`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db` (query secrets masked too)."""
    from gateway.redaction import redact_query

    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "***" if "@" in url else url
    query = redact_query(parts.query)
    if not has_password and query == parts.query:
        return url  # unchanged (urlunsplit would also rewrite `sqlite:///x` as `sqlite:/x`)
    netloc = parts.netloc
    if has_password:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))
