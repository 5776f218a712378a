from dataclasses import dataclass

from django.utils import timezone

from accounts.keys import generate_key, hash_key
from accounts.models import ApiKey


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # the only time the plaintext exists


def create_api_key(name: str) -> IssuedKey:
    name = name.strip()
    if not name:
        raise ValueError("an API key needs a name")
    prefix, key = generate_key()
    api_key = ApiKey.objects.create(name=name, prefix=prefix, hashed_key=hash_key(key))
    return IssuedKey(api_key=api_key, key=key)


def revoke_api_key(api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
