"""Helpers for driving the back office through the test client."""

import re

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')

FORM = re.compile(r"<form\b.*?</form>", re.S)


def csrf_from(html):
    """The first CSRF token on a page."""
    match = CSRF.search(html)
    assert match, "no csrf_token on the page"
    return match.group(1) or match.group(2)


def sign_in(client, username, password=PASSWORD):
    """Sign in through the real form; return the response."""
    token = csrf_from(client.get("/admin/login/").text)
    return client.post("/admin/login/", data={"username": username, "password": password, "csrf_token": token})


def admin_token(client, url):
    """A Flask-Admin form token from a page the signed-in account can open.

    The navigation bar's sign-out form comes first with a token of its own; the page's forms follow it.
    """
    html = client.get(url).text
    for form in FORM.findall(html):
        # A browser submits the first of two same-named fields: one token per form, or the save fails.
        assert len(CSRF.findall(form)) <= 1, f"a form on {url} carries two CSRF tokens"
    tokens = [a or b for a, b in CSRF.findall(html)]
    assert len(tokens) >= 2, f"no Flask-Admin form on {url}"
    return tokens[-1]
