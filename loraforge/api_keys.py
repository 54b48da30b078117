"""Creating, parsing and checking API keys (``lf_<public_id>_<secret>``)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from loraforge.models import ApiKey

KEY_PATTERN = re.compile(r"^lf_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_PUBLIC_ID_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    plain_key: str


@dataclass(frozen=True)
class StaticKeyPrincipal:
    """The principal of a request authenticated with ``LORAFORGE_API_KEY``."""

    name: str = "static"
    read_only: bool = False


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_create(
    *,
    name: str,
    read_only: bool = False,
    expires_at: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> CreatedKey:
    """Create a key; the plain key is returned once and never stored."""
    for _ in range(5):
        public_id = "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(8))
        plain = f"lf_{public_id}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    name=name,
                    public_id=public_id,
                    key_hash=digest(plain),
                    read_only=read_only,
                    expires_at=expires_at,
                    created_by=created_by,  # type: ignore[misc]
                )
        except IntegrityError:  # public_id collision: draw again
            continue
        return CreatedKey(api_key=api_key, plain_key=plain)
    raise RuntimeError("could not allocate a unique API key id")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_lookup(reference: str) -> ApiKey | None:
    """Find a key by ``lf_<public_id>``, bare public id, or UUID."""
    reference = reference.strip()
    public_id = reference[3:] if reference.startswith("lf_") else reference
    match = ApiKey.objects.filter(public_id=public_id[:8]).first() if len(public_id) == 8 else None
    if match is not None:
        return match
    try:
        return ApiKey.objects.filter(pk=reference).first()
    except (ValueError, Exception):  # not a UUID
        return None


def api_key_authenticate(presented: str) -> ApiKey | StaticKeyPrincipal | None:
    """The principal of a presented key, or None when the key is not valid."""
    static = settings.LORAFORGE_API_KEY
    if static and hmac.compare_digest(digest(presented), digest(static)):
        return StaticKeyPrincipal()
    match = KEY_PATTERN.match(presented)
    if match is None:
        return None
    api_key = _key_by_public_id(match.group(1))
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest(presented)):
        return None
    now = timezone.now()
    if not api_key.is_valid(now):
        return None
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def _key_by_public_id(public_id: str) -> ApiKey | None:
    """One indexed row, without the ORM's query compilation: this runs on every API request."""
    table = ApiKey._meta.db_table
    rows = list(ApiKey.objects.raw(f"SELECT * FROM {table} WHERE public_id = %s", [public_id]))  # noqa: S608
    return rows[0] if rows else None


def api_keys_exist() -> bool:
    return bool(settings.LORAFORGE_API_KEY) or ApiKey.objects.valid().exists()
