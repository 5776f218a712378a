"""API key format and hashing; no Django import.

A key is ``pp_<prefix>_<secret>``: the prefix (8 hex characters) finds the row, the
secret (32 url-safe bytes) proves possession. The secret has 256 bits of entropy, so a
plain SHA-256 is enough: slow password hashes guard low-entropy secrets.
"""

import hashlib
import hmac
import secrets

KEY_PREFIX = "pp_"


def generate_key() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix


def matches(key: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_key(key), hashed)
