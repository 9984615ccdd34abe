"""Guards over every back-office view, so that a new view cannot leak what the others protect."""

import re

from flask_admin.contrib.peewee import ModelView

from models.citizens import Citizen
from models.places import Ward


def _model_views(app):
    admin = app.extensions["admin"][0]
    return [view for view in admin._views if isinstance(view, ModelView)]


def _personal_path(model, seen=()):
    """The foreign keys from model to a citizen or a commune, if any (a row that says whose or where)."""
    for field in model._meta.refs:
        target = field.rel_model
        if target in (Citizen, Ward):
            return [f"{model.__name__}.{field.name}"]
        if target not in seen and target is not model:
            deeper = _personal_path(target, (*seen, model))
            if deeper:
                return [f"{model.__name__}.{field.name}", *deeper]
    return None


def test_every_view_of_personal_or_placed_rows_is_scoped(app):
    # A view of rows that belong to a citizen or a commune must narrow them to the account's
    # communes; reference data (communes themselves, vaccines, diseases, checklists) need not.
    reference = {"Ward", "Province", "HealthUnit", "UnitWard", "Staff", "Vaccine", "Disease", "Checklist",
                 "ChecklistVersion", "Question", "SavedReport", "Job"}  # fmt: skip
    for view in _model_views(app):
        model = view.model
        if model.__name__ in reference:
            continue
        path = _personal_path(model)
        if path:
            assert hasattr(model, "in_scope"), f"{view.endpoint}: {model.__name__} reaches {' → '.join(path)}"


def test_no_back_office_page_answers_a_visitor_who_has_not_signed_in(app, client):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and "GET" in r.methods]
    public = {"/admin/login/", "/admin/static/<path:filename>"}
    checked = 0
    for rule in rules:
        if rule.rule in public or "static" in rule.endpoint:
            continue
        url = re.sub(r"<[^>]+>", "1", rule.rule)
        response = client.get(url)
        assert response.status_code in (302, 303, 401, 403, 404), f"{url}: {response.status_code}"
        if response.status_code in (302, 303):
            assert "/admin/login/" in response.headers["Location"], f"{url} → {response.headers['Location']}"
        checked += 1
    assert checked > 40
