"""The signature a receiver checks: X-Pinpoint-Signature: sha256=<hex HMAC-SHA256 of
the exact body bytes, keyed with the webhook's secret>. Pure."""

import hashlib
import hmac
import json


def body_bytes(payload: dict) -> bytes:
    """One serialization, used for the signature and the request alike."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, body), header or "")
