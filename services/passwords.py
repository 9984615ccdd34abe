"""Password hashing with argon2id and one-time password generation."""

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

_hasher = PasswordHasher()
# Unambiguous characters: no 0/O, 1/l/I, so a one-time password can be read aloud.
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
MIN_PASSWORD_LENGTH = 10


def configure(**cost):
    """Change the hashing cost (time_cost, memory_cost, parallelism); tests use a cheap one."""
    global _hasher
    _hasher = PasswordHasher(**cost)


def hash_password(password):
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash, password):
    """True when the password matches the hash."""
    if not password_hash:
        # Spend the same time as a real check so a missing account is not revealed.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    """True when the hash was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def one_time_password(length=14):
    """A random password that is shown once and must be changed at first sign-in."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
