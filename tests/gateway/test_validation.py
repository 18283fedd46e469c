"""gateway.validation: names, endpoint URLs, keys and labels an operator enters."""

from __future__ import annotations

import pytest

from gateway.validation import (
    InvalidField,
    api_key,
    base_url,
    display_name,
    is_provider_name,
    provider_name,
    token_name,
    username,
)


@pytest.mark.parametrize(
    "name", ["anthropic-corp", "a", "a1-b2", "openai", "0", "x" * 63, "a-b-c-d", "9lives"]
)
def test_valid_provider_names(name: str) -> None:
    assert provider_name(name) == name
    assert is_provider_name(name) is True


@pytest.mark.parametrize(
    "name",
    [
        "Anthropic",
        "ANTHROPIC",
        "..",
        ".",
        "-a",
        "a-",
        "a--b",
        "",
        "x" * 64,
        "ａｎｔｈｒｏｐｉｃ",
        "a\x00",
        "%2e",
        "%2e%2e",
        "a_b",
        "a.b",
        "a b",
        " a",
        "a/b",
        "é",
        "a\n",
        "ı",
    ],
)
def test_invalid_provider_names(name: str) -> None:
    with pytest.raises(InvalidField) as exc:
        provider_name(name)
    assert exc.value.field == "name"
    assert is_provider_name(name) is False


def test_provider_name_messages() -> None:
    with pytest.raises(InvalidField, match=r"^name: a provider name is required$"):
        provider_name("")
    with pytest.raises(InvalidField, match=r"^name: at most 63 characters$"):
        provider_name("a" * 64)
    with pytest.raises(InvalidField, match="lowercase letters, digits and single hyphens"):
        provider_name("A")


@pytest.mark.parametrize(
    "name", ["alice", "Bob", "a", "alice.smith@example.com", "x_y-z", "1" + "a" * 63]
)
def test_valid_usernames(name: str) -> None:
    assert username(name) == name


@pytest.mark.parametrize(
    "name", ["", "-alice", ".alice", "al ice", "a" * 65, "ålice", "a\n", "a/b", "a\x00"]
)
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(InvalidField) as exc:
        username(name)
    assert exc.value.field == "username"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com"),
        ("https://api.anthropic.com/", "https://api.anthropic.com"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        (
            "https://gateway.internal_corp.example:8443/openai//",
            "https://gateway.internal_corp.example:8443/openai",
        ),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://api.example.com.:443/v1", "https://api.example.com.:443/v1"),
        ("http://10.0.0.7", "http://10.0.0.7"),
    ],
)
def test_valid_base_urls(url: str, stored: str) -> None:
    assert base_url(url) == stored


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "an endpoint URL is required"),
        ("   ", "an endpoint URL is required"),
        (" https://api.anthropic.com", "remove the surrounding whitespace"),
        ("https://api.anthropic.com\n", "remove the surrounding whitespace"),
        ("ftp://files.example.com", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("api.anthropic.com", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("https://", "must name a host"),
        ("https:///v1", "must name a host"),
        ("https://user:pass@api.example.com", "must not contain credentials"),
        ("https://sk-secret@api.example.com", "must not contain credentials"),
        ("https://api.example.com/v1?key=x", "must not have a query string or fragment"),
        ("https://api.example.com/?", "must not have a query string or fragment"),
        ("https://api.example.com/#frag", "must not have a query string or fragment"),
        ("https://api.example.com#", "must not have a query string or fragment"),
        ("https://api.example.com:0", "port 0 is not valid"),
        ("https://api.example.com:99999", "not a valid URL"),
        ("https://api.example.com:abc", "not a valid URL"),
        ("http://[::1", "not a valid URL"),
        ("https://api.exa mple.com", "printable ASCII"),
        ("https://api.exa\nmple.com", "printable ASCII"),
        ("https://api.example.com/v1\r\nX-Injected: 1", "printable ASCII"),
        ("https://api.example.com/\tv1", "printable ASCII"),
        ("https://bücher.example", "printable ASCII"),
        ("https://api.example.com\\@evil.example", "printable ASCII"),
        ("https://a<b>.example", "not a valid host name"),
        ("http://../", "not a valid host name"),
        ("http://a..b/", "not a valid host name"),
        ("http://-x.example", "not a valid host name"),
        ("http://x-.example", "not a valid host name"),
        ("http://.example", "not a valid host name"),
        ("https://" + "a" * 2050 + ".com", "at most 2048 characters"),
    ],
)
def test_invalid_base_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidField) as exc:
        base_url(url)
    assert exc.value.field == "base_url"
    assert message in exc.value.message


@pytest.mark.parametrize("key", ["sk-ant-api03-abc", "x", "sk-proj_ABC.def~ghi+/=", "k" * 4096])
def test_valid_api_keys(key: str) -> None:
    assert api_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        (" sk-abc", "surrounding whitespace"),
        ("sk-abc\n", "surrounding whitespace"),
        ("sk abc", "printable ASCII"),
        ("sk-\x00abc", "printable ASCII"),
        ("sk-\x7fabc", "printable ASCII"),
        ("sk-ábc", "printable ASCII"),
        ("sk-\u200babc", "printable ASCII"),  # zero-width space from a copy-paste
        ("k" * 4097, "at most 4096 characters"),
    ],
)
def test_invalid_api_keys(key: str, message: str) -> None:
    with pytest.raises(InvalidField) as exc:
        api_key(key)
    assert exc.value.field == "api_keys"
    assert message in exc.value.message


def test_labels() -> None:
    assert display_name("Anthropic (corp) — prod") == "Anthropic (corp) — prod"
    assert display_name("") == ""
    assert token_name("laptop") == "laptop"
    with pytest.raises(InvalidField, match=r"^display_name: at most 200 characters$"):
        display_name("d" * 201)
    with pytest.raises(InvalidField, match=r"^display_name: must not contain control characters$"):
        display_name("two\nlines")
    with pytest.raises(InvalidField, match=r"^name: at most 100 characters$"):
        token_name("t" * 101)


def test_invalid_field_carries_field_and_message() -> None:
    err = InvalidField("base_url", "nope")
    assert (err.field, err.message, str(err)) == ("base_url", "nope", "base_url: nope")
    assert isinstance(err, ValueError)
