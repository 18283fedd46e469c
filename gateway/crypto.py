"""Encryption at rest for provider API keys: AES-256-GCM from `cryptography`.

Keys come from `AI_GATEWAY_ENCRYPTION_KEYS` (comma-separated, base64, 32 bytes each) or, when
that is unset, from a key file generated with mode 0600 in the data dir. The first key encrypts;
every key decrypts, so a new key can be put first and `aibridge keys rotate` re-encrypts.

Ciphertext layout: b"\\x01" | key id (4 bytes, SHA-256 prefix of the key) | nonce (12) | ct+tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
KEY_FILE_NAME = "encryption.key"
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class KeyringError(Exception):
    pass


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(text: str) -> bytes:
    """A base64 key (url-safe or standard alphabet, padding optional), exactly 32 bytes."""
    text = text.strip().translate(_URLSAFE_TO_STANDARD)
    try:
        # validate=True: a stray character is an error, not silently dropped.
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyringError("an encryption key is not valid base64") from exc
    if len(raw) != 32:
        raise KeyringError(f"an encryption key must be 32 bytes, got {len(raw)}")
    return raw


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


class Keyring:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise KeyringError("no encryption key")
        self._primary = keys[0]
        self._by_id = {_key_id(k): AESGCM(k) for k in keys}
        self._primary_aead = self._by_id[_key_id(self._primary)]
        self.primary_id = _key_id(self._primary)

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        return cls([_decode_key(part) for part in text.split(",") if part.strip()])

    @classmethod
    def load(cls, configured: str | None, data_dir: Path) -> Keyring:
        """Keys from the setting, else from `<data_dir>/encryption.key` (created 0600)."""
        if configured:
            return cls.from_text(configured)
        return cls.from_text(read_or_create_key_file(data_dir / KEY_FILE_NAME))

    def encrypt(self, plaintext: str, *, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = self._primary_aead.encrypt(nonce, plaintext.encode(), aad)
        return _VERSION + self.primary_id + nonce + sealed

    def decrypt(self, blob: bytes, *, aad: bytes) -> str:
        if len(blob) < 1 + 4 + 12 + 16 or blob[:1] != _VERSION:
            raise KeyringError("not an aibridge ciphertext")
        aead = self._by_id.get(blob[1:5])
        if aead is None:
            raise KeyringError(
                "the key that encrypted this value is not configured "
                "(add it to AI_GATEWAY_ENCRYPTION_KEYS)"
            )
        try:
            return aead.decrypt(blob[5:17], blob[17:], aad).decode()
        except InvalidTag as exc:
            raise KeyringError("ciphertext failed authentication") from exc

    def needs_rotation(self, blob: bytes) -> bool:
        return blob[1:5] != self.primary_id


def read_or_create_key_file(path: Path) -> str:
    """The key in `path`; on first use a new key, published atomically with mode 0600."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_key()
    # Write a private temporary file completely, then link it into place: a concurrent
    # reader sees either no file or the whole key, never an empty one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except FileExistsError:  # another process won the race: use its key
        return _read_key_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _publish(tmp: Path, path: Path) -> None:
    """Hard-link `tmp` to `path` (FileExistsError if taken); rename-free, so never clobbers."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: exclusive create, then copy
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(tmp.read_text())


def _read_key_file(path: Path) -> str:
    text = path.read_text().strip()
    if not text:
        raise KeyringError(f"the key file {path} is empty")
    return text
