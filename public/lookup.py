"""Seed 002's lookup: personal health code + phone, a code by SMS, then the citizen's own record."""

import secrets

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from flask_wtf.csrf import validate_csrf
from markupsafe import Markup
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from models.audit import Action
from models.audit import AuditEvent
from models.base import PreparedQuery
from models.base import db
from models.citizens import Citizen
from models.corrections import CORRECTABLE_FIELDS
from models.corrections import CorrectionRequest
from models.labels import FIELD_LABELS
from models.lookup import CitizenSession
from models.lookup import LookupChallenge
from models.places import Ward
from models.records import record_of
from models.validation import FieldError
from models.validation import normalize_health_code
from models.validation import normalize_phone
from services import clock
from services import code_requests
from services import otp
from services.sms import unaccented

bp = Blueprint("lookup", __name__)
# What the record page shows of the citizen (the rest of the row stays in the database).
RECORD_COLUMNS = (
    Citizen.id,
    Citizen.full_name,
    Citizen.date_of_birth,
    Citizen.gender,
    Citizen.health_code,
    Citizen.national_id,
    Citizen.insurance_number,
    Citizen.phone,
    Citizen.ward,
    Citizen.permanent_address,
    Citizen.household,
)
# The record page's reads, composed once each (PreparedQuery); a page of the portal's hottest path.
_SESSION = PreparedQuery(lambda token: CitizenSession.select().where(CitizenSession.token == token))
_CITIZEN = PreparedQuery(
    lambda citizen_id: Citizen.select(*RECORD_COLUMNS, Ward.code, Ward.name).join(Ward).where(Citizen.id == citizen_id)
)
_STAFF_VIEWS = PreparedQuery(
    lambda citizen_id, action, limit: AuditEvent.staff_views_of(citizen_id, limit=limit, with_unit_names=True)
)
_CORRECTIONS = PreparedQuery(
    lambda citizen_id, limit: (
        CorrectionRequest.select()
        .where(CorrectionRequest.citizen == citizen_id)
        .order_by(CorrectionRequest.id.desc())
        .limit(limit)
    )
)
SESSION_CHALLENGE = "lookup_challenge"
SESSION_CITIZEN = "citizen_session"


def _domain_check(normalize):
    """A WTForms validator that asks the domain to normalise the value (punctuation alone is no value)."""

    def check(form, field):
        try:
            field.data = normalize(field.data)
        except FieldError as exc:
            raise ValidationError(str(exc.message)) from exc
        if field.data is None:
            raise ValidationError(_("Required"))

    return check


# The lookup form's fields: name, longest value accepted, the domain's normalisation.
LOOKUP_FIELDS = (("health_code", 40, normalize_health_code), ("phone", 20, normalize_phone))
_MAX_LENGTH = {name: max_length for name, max_length, _normalize in LOOKUP_FIELDS}


class LookupForm(FlaskForm):
    health_code = StringField(
        _l("Personal health code"),
        validators=[DataRequired(), Length(max=_MAX_LENGTH["health_code"]), _domain_check(normalize_health_code)],
    )
    phone = StringField(
        _l("Phone"), validators=[DataRequired(), Length(max=_MAX_LENGTH["phone"]), _domain_check(normalize_phone)]
    )


class VerifyForm(FlaskForm):
    otp = StringField(_l("Verification code"), validators=[DataRequired(), Length(min=6, max=6)])

    def validate_otp(self, field):
        if not (field.data or "").strip().isdigit():
            raise ValidationError(_("The code has 6 digits."))


class ResendForm(FlaskForm):
    """Only the CSRF token: the details come from the browser's open challenge."""


class CorrectionForm(FlaskForm):
    field = SelectField(_l("Detail to correct"), choices=[SelectChoice(f, FIELD_LABELS[f]) for f in CORRECTABLE_FIELDS])
    proposed_value = StringField(_l("Correct value"), validators=[DataRequired(), Length(max=255)])
    note = TextAreaField(_l("Note for the commune health station"), validators=[Length(max=1000)])


def _audit(outcome, citizen_id=None, **detail):
    AuditEvent.record(
        Action.LOOKUP,
        object_type="citizen",
        citizen_id=citizen_id,
        address=request.remote_addr,
        outcome=outcome,
        **detail,
    )


def _send_code(phone, health_code, replaces=None):
    """Open a challenge and text the code when the details match; the answer is the same either way."""
    sms = current_app.extensions["sms"]
    if sms.is_failing:
        _audit("sms_unavailable")
        return "unavailable"
    # The match, the limits, the challenge and the audit row in one short transaction, with the
    # same statements whether or not the details match, so that the time taken does not tell.
    outcome, citizen_id, token, code = code_requests.request_code(
        current_app.config["SECRET_KEY"], clock.now(), phone, health_code, request.remote_addr, replaces=replaces
    )
    if outcome != "sent":
        return outcome
    # Queued only once the challenge is committed, so that the code always finds it.
    if citizen_id is not None:
        sms.submit(phone, unaccented(_("Health record lookup code: %(code)s. Valid for 5 minutes.", code=code)))
    session[SESSION_CHALLENGE] = token
    return "sent"


def _refusal(outcome):
    if outcome == "limited":
        return _("Too many codes were requested for these details. Please try again in an hour."), 429
    return _("Text messages cannot be sent right now. Please try again later."), 503


def valid_lookup_details(data):
    """(health code, phone) normalised, when data passes every check of LookupForm (CSRF included); else None.

    The same checks without building the form: the lookup's POST is the public site's busiest,
    and a form costs more to build than its checks. Any failure is answered by LookupForm itself,
    with its messages (tests hold the two to the same verdicts).
    """
    try:
        validate_csrf(data.get("csrf_token"))
    except ValidationError:
        return None
    details = []
    for name, max_length, normalize in LOOKUP_FIELDS:
        value = data.get(name, "")
        if not value.strip() or len(value) > max_length:
            return None
        try:
            value = normalize(value)
        except FieldError:
            return None
        if value is None:
            return None
        details.append(value)
    return tuple(details)


@bp.route("/lookup", methods=["GET", "POST"])
def lookup():
    details = valid_lookup_details(request.form) if request.method == "POST" else None
    if details is None:
        form = LookupForm()
        if not form.validate_on_submit():
            return render_template("public/lookup.html", form=form), 400 if form.is_submitted() else 200
        details = form.health_code.data, form.phone.data
    health_code, phone = details
    outcome = _send_code(phone, health_code)
    if outcome != "sent":
        message, status = _refusal(outcome)
        flash(message, "error")
        return render_template("public/lookup.html", form=LookupForm()), status
    return _fresh_verify_page()


# (language, path) -> the verify page as every new challenge shows it, its CSRF token stood in for.
_FRESH_VERIFY_PAGES = {}
_TOKEN_STAND_IN = "portal-csrf-token-stand-in"


def _fresh_verify_page():
    """The verify page of a new challenge: the same for everyone but the CSRF token, so rendered once per language (and path).

    Rendering it (layout, two forms, translations) cost more than the rest of the lookup's POST.
    A page with a message to show, or asked for with a query string, is rendered as usual.
    """
    token = generate_csrf()
    if session.get("_flashes") or request.query_string:
        return render_template("public/verify.html", form=VerifyForm(formdata=None), resend=ResendForm())
    key = (str(get_locale()), request.path)
    page = _FRESH_VERIFY_PAGES.get(key)
    if page is None:
        html = render_template("public/verify.html", form=VerifyForm(formdata=None), resend=ResendForm())
        page = _FRESH_VERIFY_PAGES[key] = html.replace(token, _TOKEN_STAND_IN)
    return page.replace(_TOKEN_STAND_IN, token)


@bp.post("/lookup/resend")
def resend():
    form = ResendForm()
    challenge = LookupChallenge.get_or_none(LookupChallenge.token == session.get(SESSION_CHALLENGE, ""))
    if not form.validate_on_submit() or challenge is None:
        flash(_("Please enter your details again."), "error")
        return redirect(url_for("lookup.lookup"), 303)
    outcome = _send_code(challenge.phone, challenge.health_code, replaces=challenge.token)
    if outcome != "sent":
        message, status = _refusal(outcome)
        flash(message, "error")
        return render_template("public/verify.html", form=VerifyForm(formdata=None), resend=form), status
    flash(_("A new code was sent. The previous code no longer works."), "info")
    return render_template("public/verify.html", form=VerifyForm(formdata=None), resend=ResendForm())


@bp.post("/lookup/verify")
def verify():
    form = VerifyForm()
    if not form.validate_on_submit():
        return render_template("public/verify.html", form=form, resend=ResendForm()), 400
    now = clock.now()
    outcome, challenge = otp.check(current_app.config["SECRET_KEY"], session.get(SESSION_CHALLENGE), form.otp.data, now)
    citizen_id = challenge.citizen_id if challenge else None
    _audit(f"code_{outcome}", citizen_id)
    if outcome == "ok":
        token = secrets.token_urlsafe(32)
        CitizenSession.create(token=token, citizen_id=challenge.citizen_id, started_at=now)
        # A new session on verification: nothing from before it carries over but the language.
        lang = session.get("lang")
        session.clear()
        session.permanent = False
        session[SESSION_CITIZEN] = token
        if lang:
            session["lang"] = lang
        return redirect(url_for("lookup.record"), 303)
    if outcome == "wrong":
        tries_left = otp.MAX_WRONG_TRIES - challenge.attempts - 1
        form.otp.errors.append(_("The code is not right. %(n)s tries left.", n=tries_left))
        return render_template("public/verify.html", form=form, resend=ResendForm()), 400
    session.pop(SESSION_CHALLENGE, None)
    flash(_("This code can no longer be used. Please request a new code."), "error")
    return render_template("public/lookup.html", form=LookupForm(formdata=None)), 400


_CORRECTION_FIELDS = {}  # language -> the correction form's fields, rendered


def _correction_fields():
    """The correction form's fields, empty as every record page shows them, rendered once per language."""
    language = str(get_locale())
    html = _CORRECTION_FIELDS.get(language)
    if html is None:
        form = CorrectionForm(formdata=None, meta={"csrf": False})
        html = _CORRECTION_FIELDS[language] = Markup(render_template("public/_correction_fields.html", form=form))
    return html


def current_citizen_session():
    """The citizen's valid session, or None."""
    token = session.get(SESSION_CITIZEN)
    if not token:
        return None
    found = _SESSION(token)
    citizen_session = found[0] if found else None
    if citizen_session is None or not citizen_session.is_valid(clock.now()):
        session.pop(SESSION_CITIZEN, None)
        return None
    return citizen_session


@bp.after_request
def _never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/record")
def record():
    citizen_session = current_citizen_session()
    if citizen_session is None:
        flash(_("Your session has ended. Please look up your record again."), "info")
        return redirect(url_for("lookup.lookup"), 303)
    found = _CITIZEN(citizen_session.citizen_id)
    if not found:
        abort(404)
    citizen = found[0]
    staff_views = _STAFF_VIEWS(citizen.id, Action.VIEW, 50)
    AuditEvent.record(
        Action.VIEW,
        object_type="citizen",
        object_id=citizen.id,
        citizen_id=citizen.id,
        address=request.remote_addr,
        by="citizen",
    )
    return render_template(
        "public/record.html",
        citizen=citizen,
        record=record_of(citizen, with_family=False),
        staff_views=staff_views,
        corrections=_CORRECTIONS(citizen.id, 20),
        correction_fields=_correction_fields,
        printable=request.args.get("print") == "1",
    )


@bp.post("/record/correction")
def correction():
    citizen_session = current_citizen_session()
    if citizen_session is None:
        return redirect(url_for("lookup.lookup"), 303)
    form = CorrectionForm()
    if form.validate_on_submit():
        try:
            with db.atomic():
                CorrectionRequest.create(
                    citizen=citizen_session.citizen_id,
                    field=form.field.data,
                    proposed_value=form.proposed_value.data,
                    note=form.note.data,
                )
        except FieldError as exc:
            flash(f"{FIELD_LABELS.get(exc.field, exc.field)}: {exc.message}", "error")
        else:
            flash(_("Your request was sent to your commune health station."), "info")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
    return redirect(url_for("lookup.record"), 303)


@bp.post("/record/sign-out")
def sign_out():
    form = ResendForm()
    citizen_session = current_citizen_session()
    if form.validate_on_submit() and citizen_session is not None:
        CitizenSession.update(ended_at=clock.now()).where(CitizenSession.id == citizen_session.id).execute()
        session.pop(SESSION_CITIZEN, None)
        flash(_("You have signed out."), "info")
    return redirect(url_for("lookup.lookup"), 303)
