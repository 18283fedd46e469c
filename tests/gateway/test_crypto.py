"""gateway.crypto: AES-256-GCM for provider keys at rest, keyring and key file."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto import (
    KEY_FILE_NAME,
    Keyring,
    KeyringError,
    generate_key,
    read_or_create_key_file,
)

AAD = b"aibridge-provider-key:one"
_KEY_A = generate_key()
_KEY_B = generate_key()


def test_generate_key_is_32_random_bytes() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(base64.urlsafe_b64decode(a)) == 32


@given(st.text(max_size=300))
def test_round_trip(plaintext: str) -> None:
    ring = Keyring.from_text(_KEY_A)
    blob = ring.encrypt(plaintext, aad=AAD)
    assert ring.decrypt(blob, aad=AAD) == plaintext


def test_ciphertext_layout_and_no_plaintext() -> None:
    ring = Keyring.from_text(_KEY_A)
    secret = "sk-ant-api03-" + "x" * 40
    blob = ring.encrypt(secret, aad=AAD)
    assert blob[:1] == b"\x01"
    assert blob[1:5] == ring.primary_id
    assert len(blob) == 1 + 4 + 12 + len(secret.encode()) + 16
    assert secret.encode() not in blob
    assert ring.encrypt(secret, aad=AAD) != blob  # a fresh nonce every time


def test_ciphertext_is_bound_to_aad() -> None:
    ring = Keyring.from_text(_KEY_A)
    blob = ring.encrypt("sk-secret-value", aad=AAD)
    with pytest.raises(KeyringError, match="ciphertext failed authentication"):
        ring.decrypt(blob, aad=b"aibridge-provider-key:two")


def test_tampered_ciphertext_fails() -> None:
    ring = Keyring.from_text(_KEY_A)
    blob = bytearray(ring.encrypt("sk-secret-value", aad=AAD))
    blob[-1] ^= 1
    with pytest.raises(KeyringError, match="failed authentication"):
        ring.decrypt(bytes(blob), aad=AAD)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02" + b"\x00" * 40, b"\x01" + b"\x00" * 20])
def test_not_a_ciphertext(blob: bytes) -> None:
    with pytest.raises(KeyringError, match="not an aibridge ciphertext"):
        Keyring.from_text(_KEY_A).decrypt(blob, aad=AAD)


def test_first_key_encrypts_all_decrypt() -> None:
    old = Keyring.from_text(_KEY_A)
    sealed_by_old = old.encrypt("old-secret", aad=AAD)
    both = Keyring.from_text(f"{_KEY_B},{_KEY_A}")
    assert both.primary_id == Keyring.from_text(_KEY_B).primary_id
    sealed_by_new = both.encrypt("new-secret", aad=AAD)
    assert sealed_by_new[1:5] == Keyring.from_text(_KEY_B).primary_id
    assert both.decrypt(sealed_by_old, aad=AAD) == "old-secret"
    assert both.decrypt(sealed_by_new, aad=AAD) == "new-secret"
    assert both.needs_rotation(sealed_by_old) is True
    assert both.needs_rotation(sealed_by_new) is False
    assert Keyring.from_text(_KEY_B).decrypt(sealed_by_new, aad=AAD) == "new-secret"


def test_unknown_key_id_is_a_clear_error() -> None:
    blob = Keyring.from_text(_KEY_A).encrypt("s", aad=AAD)
    with pytest.raises(
        KeyringError, match=r"not configured \(add it to AI_GATEWAY_ENCRYPTION_KEYS\)"
    ):
        Keyring.from_text(_KEY_B).decrypt(blob, aad=AAD)


def test_keys_in_standard_base64_and_without_padding() -> None:
    raw = base64.urlsafe_b64decode(_KEY_A)
    ring = Keyring.from_text(_KEY_A)
    assert Keyring.from_text(base64.b64encode(raw).decode()).primary_id == ring.primary_id
    assert Keyring.from_text(_KEY_A.rstrip("=")).primary_id == ring.primary_id
    assert Keyring.from_text(f"  {_KEY_A} , ").primary_id == ring.primary_id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64 at all!", "not valid base64"),
        (_KEY_A + "!", "not valid base64"),
        ("é" * 44, "not valid base64"),
        (base64.b64encode(b"k" * 16).decode(), "must be 32 bytes, got 16"),
        (base64.b64encode(b"k" * 33).decode(), "must be 32 bytes, got 33"),
        ("", "no encryption key"),
        (" , ", "no encryption key"),
        (f"{_KEY_A},short", "not valid base64|must be 32 bytes"),
    ],
)
def test_bad_key_text(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        Keyring.from_text(text)


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ring = Keyring.load(None, data)
    path = data / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    text = path.read_text().strip()
    assert len(base64.urlsafe_b64decode(text)) == 32
    again = Keyring.load(None, data)
    assert again.primary_id == ring.primary_id
    blob = ring.encrypt("kept", aad=AAD)
    assert again.decrypt(blob, aad=AAD) == "kept"
    assert path.read_text().strip() == text
    assert [p.name for p in data.iterdir()] == [KEY_FILE_NAME]  # no temporary file left


def test_key_file_created_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        Keyring.load(None, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    ring = Keyring.load(_KEY_A, tmp_path)
    assert ring.primary_id == Keyring.from_text(_KEY_A).primary_id
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_empty_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("\n")
    with pytest.raises(KeyringError, match="is empty"):
        Keyring.load(None, tmp_path)


def test_bad_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("garbage!\n")
    with pytest.raises(KeyringError, match="not valid base64"):
        Keyring.load(None, tmp_path)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "d" / KEY_FILE_NAME
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(read_or_create_key_file(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert path.read_text().strip() == results[0]


def test_empty_keyring_is_refused() -> None:
    with pytest.raises(KeyringError, match="no encryption key"):
        Keyring([])
