"""Redirect targets: only paths on this site, never another host."""

from urllib.parse import urlparse

from flask import request


def local_target(target, fallback):
    """Return target when it is a path on this host, otherwise fallback."""
    if not target:
        return fallback
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc:
        host = urlparse(request.host_url)
        if (parsed.scheme, parsed.netloc) != (host.scheme, host.netloc):
            return fallback
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return fallback
    return target
