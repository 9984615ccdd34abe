"""One-time codes: 6 digits from secrets, kept only as a keyed hash, 5 minutes, 3 tries, single use."""

import datetime
import hashlib
import hmac
import secrets

from models.base import db
from models.lookup import LookupChallenge

CODE_LIFETIME = datetime.timedelta(minutes=5)
MAX_WRONG_TRIES = 3


def new_code():
    """Six random digits."""
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(key, token, code):
    """The keyed hash stored for a challenge's code."""
    return hmac.new(key.encode(), f"{token}:{code}".encode(), hashlib.sha256).hexdigest()


def start(key, now, citizen_id, phone, health_code, replaces=None, purpose="lookup", sent=None):
    """Open a challenge and return (challenge, code); the previous one for the browser dies.

    A challenge is opened whether or not the details matched a citizen, so that what follows
    looks and costs the same either way; with no citizen, nobody ever learns its code.
    sent: whether the caller texts the code; by default, when the details matched a citizen.
    """
    fields, code = new_challenge(key, now, citizen_id, phone, health_code, purpose, sent)
    with db.atomic():
        if replaces:
            LookupChallenge.update(dead=True).where(LookupChallenge.token == replaces).execute()
        challenge = LookupChallenge.create(**fields)
    return challenge, code


def new_challenge(key, now, citizen_id, phone, health_code, purpose="lookup", sent=None):
    """(the new challenge's fields, its code): what start() stores, for callers that write it themselves."""
    code = new_code()
    token = secrets.token_urlsafe(32)
    fields = {
        "token": token,
        "citizen_id": citizen_id,
        "phone": phone,
        "health_code": health_code or "",
        "code_hash": code_hash(key, token, code),
        "purpose": purpose,
        "sent": citizen_id is not None if sent is None else sent,
        "expires_at": now + CODE_LIFETIME,
    }
    return fields, code


def check(key, token, code, now, purpose="lookup"):
    """Return (outcome, challenge): outcome is ok, wrong, expired, dead or missing."""
    challenge = LookupChallenge.get_or_none(LookupChallenge.token == (token or ""))
    if challenge is None or challenge.purpose != purpose:
        return "missing", None
    if challenge.dead or challenge.used_at is not None:
        return "dead", challenge
    if challenge.expires_at <= now:
        return "expired", challenge
    expected = challenge.code_hash
    given = code_hash(key, token, (code or "").strip())
    if hmac.compare_digest(expected, given) and challenge.sent:
        # Single use: only the first of two simultaneous right answers wins.
        claimed = (
            LookupChallenge.update(used_at=now)
            .where((LookupChallenge.id == challenge.id) & LookupChallenge.used_at.is_null() & ~LookupChallenge.dead)
            .execute()
        )
        return ("ok", challenge) if claimed else ("dead", challenge)
    attempts = challenge.attempts + 1
    LookupChallenge.update(attempts=attempts, dead=attempts >= MAX_WRONG_TRIES).where(
        LookupChallenge.id == challenge.id
    ).execute()
    return ("dead" if attempts >= MAX_WRONG_TRIES else "wrong"), challenge
