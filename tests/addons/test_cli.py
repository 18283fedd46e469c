from __future__ import annotations

from addons.cli import normalize_argv


def test_bare_bool_flags_mean_true() -> None:
    assert normalize_argv(["server", "--ai-gateway-structured-logging", "--listen", "h:1"]) == [
        "server",
        "--ai-gateway-structured-logging=true",
        "--listen",
        "h:1",
    ]
    assert normalize_argv(["server", "--ai-gateway-enabled"]) == [
        "server",
        "--ai-gateway-enabled=true",
    ]
    assert normalize_argv(["server", "--ai-gateway-enabled", "false"]) == [
        "server",
        "--ai-gateway-enabled",
        "false",
    ]
    assert normalize_argv(["server", "--ai-gateway-retention", "--x"]) == [
        "server",
        "--ai-gateway-retention",
        "--x",
    ]  # not a bool flag: untouched
