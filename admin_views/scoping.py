"""The one place that decides what the signed-in account may see and do."""

from flask import g
from flask_login import current_user

from models.accounts import Scope


def current_scope():
    """The signed-in account's scope, computed once per request."""
    if not current_user.is_authenticated:
        return Scope(frozenset())
    if "portal_scope" not in g:
        g.portal_scope = current_user.scope()
    return g.portal_scope


def scoped(model, query=None):
    """The rows of model the signed-in account may see."""
    query = model.select() if query is None else query
    in_scope = getattr(model, "in_scope", None)
    return in_scope(current_scope(), query) if in_scope else query


def allowed(action, resource):
    """True when the signed-in account may do action on resource."""
    return (
        current_user.is_authenticated and not current_user.must_change_password and current_user.can(action, resource)
    )
