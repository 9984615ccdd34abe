"""The citizens' public site."""

from flask import Blueprint
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from peewee import PeeweeException

from models.accounts import Role
from models.base import db
from models.citizens import GENDERS
from models.corrections import STATUSES
from models.labels import FIELD_LABELS
from services.display import format_date
from services.display import format_datetime
from services.display import masked
from services.safe_urls import local_target

bp = Blueprint("public", __name__)


@bp.app_template_filter("vn_date")
def vn_date(value):
    return format_date(value)


@bp.app_template_filter("vn_datetime")
def vn_datetime(value):
    return format_datetime(value)


@bp.app_template_filter("masked")
def masked_filter(value):
    return masked(value)


@bp.app_context_processor
def labels():
    """Label look-ups for templates, so they never spell out codes."""
    return {
        "gender_label": lambda code: dict(GENDERS).get(code, ""),
        "role_label": lambda code: Role.LABELS.get(code, code or ""),
        "field_label": lambda name: FIELD_LABELS.get(name, name),
        "status_label": lambda code: dict(STATUSES).get(code, code),
    }


@bp.get("/")
def index():
    return render_template("public/index.html")


@bp.get("/healthz")
def healthz():
    """200 with db ok while the database answers, 503 otherwise."""
    try:
        db.execute_sql("SELECT 1").fetchone()
    except PeeweeException:
        return jsonify(status="error", db="error"), 503
    return jsonify(status="ok", db="ok")


@bp.route("/lang/<code>", methods=["GET", "POST"])
def set_language(code):
    """Switch between Vietnamese and English, then go back to a local page."""
    from app import LANGUAGES

    if code in LANGUAGES:
        session["lang"] = code
    return redirect(local_target(request.args.get("next") or request.referrer, url_for("public.index")))
