"""Facilities' API keys: issue one (its secret shown once), revoke it, authenticate a request by it."""

import datetime
import secrets

from models.api import PREFIX_LENGTH
from models.api import ApiKey
from models.api import hash_secret
from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from services import clock

# last_used_at is a hint for administrators: writing it on every request would cost a write per call.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def issue(facility, name, by):
    """Create a key for facility; return (api_key, plaintext). The plaintext is not kept anywhere."""
    plaintext = secrets.token_urlsafe(32)
    with db.atomic():
        api_key = ApiKey.create(
            facility=facility,
            name=(name or "").strip() or facility.code,
            prefix=plaintext[:PREFIX_LENGTH],
            key_hash=hash_secret(plaintext),
            created_by=by,
        )
        AuditEvent.record(
            Action.CREATE, actor=by, object_type="api_key", object_id=api_key.id, facility=facility.code, name=name
        )
    return api_key, plaintext


def revoke(api_key, by):
    """Refuse the key from now on; revoking twice changes nothing."""
    if api_key.revoked_at is not None:
        return api_key
    with db.atomic():
        api_key.revoked_at = clock.now()
        api_key.save()
        AuditEvent.record(
            Action.UPDATE,
            actor=by,
            object_type="api_key",
            object_id=api_key.id,
            facility=api_key.facility.code,
            revoked=True,
        )
    return api_key


def bearer_token(request):
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    return token


def authenticate(request):
    """The unrevoked key the request's bearer token is the secret of, or None."""
    token = bearer_token(request)
    if token is None:
        return None
    # Looked up by the secret's hash: the comparison never runs over the secret itself.
    api_key = ApiKey.active_by_secret(token)
    if api_key is None:
        return None
    now = clock.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.update(last_used_at=now).where(ApiKey.id == api_key.id).execute()
        api_key.last_used_at = now
    return api_key
