"""The current time, in one place, so tests can move it instead of sleeping."""

from models.base import utcnow


def now():
    """Naive UTC now."""
    return utcnow()
