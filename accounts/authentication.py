"""`Authorization: Api-Key <key>` for client endpoints.

Verification is cached in process memory for API_KEY_CACHE_SECONDS, so a client
request costs no database query in steady state, and a revoked key stops working
within that many seconds. While the database cannot be reached, a key verified
in the hour before the outage keeps working (its last verification stands) so that assignment,
which needs no database, goes on; a key not seen before gets the 503 of the outage.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError
from rest_framework import authentication, exceptions

from accounts.keys import hash_key, matches, prefix_of
from accounts.models import ApiKey

KEYWORD = "Api-Key"
OUTAGE_GRACE_SECONDS = 3600
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class ApiClient:
    """The principal of a request made with an API key."""

    key_id: int
    name: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_superuser: bool = False
    is_staff: bool = False

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def __str__(self):
        return f"api-key:{self.name}"


class _VerificationCache:
    """key hash -> (ApiClient or None, expiry). None caches a refusal too, so that
    a client retrying a bad key does not cost a query each time."""

    def __init__(self):
        self._entries: dict[str, tuple[ApiClient | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str):
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def last(self, digest: str, max_age: float) -> ApiClient | None:
        """The client this key was last verified as, if that was at most max_age seconds ago."""
        entry = self._entries.get(digest)
        if entry is None or entry[1] - settings.API_KEY_CACHE_SECONDS < time.monotonic() - max_age:
            return None
        return entry[0]

    def put(self, digest: str, client: ApiClient | None) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_CACHED:
                self._entries.clear()
            self._entries[digest] = (client, time.monotonic() + settings.API_KEY_CACHE_SECONDS)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verification_cache = _VerificationCache()


def verify_key(key: str) -> ApiClient | None:
    digest = hash_key(key)
    hit, client = verification_cache.get(digest)
    if hit:
        return client
    try:
        client = _look_up(key)
    except (OperationalError, InterfaceError):
        # An outage: the last verification stands for up to OUTAGE_GRACE_SECONDS, and is
        # cached again so that the database is not asked on every request meanwhile.
        if (last := verification_cache.last(digest, OUTAGE_GRACE_SECONDS)) is not None:
            verification_cache.put(digest, last)
            return last
        raise
    verification_cache.put(digest, client)
    return client


def _look_up(key: str) -> ApiClient | None:
    prefix = prefix_of(key)
    if prefix is None:
        return None
    row = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).only("id", "name", "hashed_key").first()
    if row is not None and matches(key, row.hashed_key):
        return ApiClient(key_id=row.id, name=row.name)
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("Api-Key header has no key.")
        client = verify_key(key)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return client, client

    def authenticate_header(self, request):
        return KEYWORD
