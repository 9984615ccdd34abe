"""Seed 003's risk declaration: a checklist for oneself or on someone's behalf, confirmed by a code sent to the phone."""

import datetime
import json

import segno
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import RadioField
from wtforms import SelectField
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length
from wtforms.validators import Optional

from models.audit import Action
from models.audit import AuditEvent
from models.base import PreparedQuery
from models.base import db
from models.citizens import Citizen
from models.labels import FIELD_LABELS
from models.places import Ward
from models.risk import CaseStatus
from models.risk import Checklist
from models.risk import ChecklistVersion
from models.risk import Declaration
from models.risk import DeclarationDraft
from models.risk import QuestionKind
from models.risk import RiskLevel
from models.risk import declare
from models.risk import notification_address
from models.text import fold
from models.units import HealthUnit
from models.validation import FieldError
from models.validation import normalize_health_code
from models.validation import normalize_phone
from models.validation import validate_birth_date
from public.lookup import VerifyForm
from services import clock
from services import mail
from services import otp
from services import rate_limits
from services.sms import unaccented

bp = Blueprint("declare", __name__)
SESSION_CHALLENGE = "declare_challenge"
SESSION_DONE = "declared_number"
RELATIONS = (
    ("parent", _l("Parent")),
    ("child", _l("Child")),
    ("spouse", _l("Spouse")),
    ("relative", _l("Other relative")),
    ("carer", _l("Carer")),
    ("other", _l("Other")),
)
PERSON_LABELS = {
    "for_whom": _l("Who is this declaration for?"),
    "declarant_name": _l("Your full name"),
    "declarant_relation": _l("Your relationship to the person"),
    "identify_by": _l("How to find the person"),
    "health_code": FIELD_LABELS["health_code"],
    "full_name": FIELD_LABELS["full_name"],
    "date_of_birth": FIELD_LABELS["date_of_birth"],
    "ward": _l("Commune/ward of residence"),
    "phone": _l("Phone to receive the code"),
}


def ward_choices():
    """Communes of the provinces the portal serves, by name."""
    provinces = HealthUnit.select(HealthUnit.province).distinct()
    wards = Ward.select(Ward.code, Ward.name).where(Ward.province.in_(provinces)).order_by(Ward.name)
    return [SelectChoice("", _("Choose…"))] + [SelectChoice(str(w.code), w.name) for w in wards]


class PersonForm(FlaskForm):
    for_whom = RadioField(
        PERSON_LABELS["for_whom"],
        choices=[
            SelectChoice("self", _l("Myself")),
            SelectChoice("other", _l("Someone else (declaring on their behalf)")),
        ],
        default="self",
    )
    declarant_name = StringField(PERSON_LABELS["declarant_name"], validators=[Optional(), Length(max=255)])
    declarant_relation = SelectField(
        PERSON_LABELS["declarant_relation"],
        choices=[SelectChoice("", _l("Choose…"))] + [SelectChoice(v, label) for v, label in RELATIONS],
        validators=[Optional()],
    )
    identify_by = RadioField(
        PERSON_LABELS["identify_by"],
        choices=[
            SelectChoice("health_code", _l("By the personal health code")),
            SelectChoice("details", _l("By name, date of birth and commune")),
        ],
        default="health_code",
    )
    health_code = StringField(PERSON_LABELS["health_code"], validators=[Optional(), Length(max=40)])
    full_name = StringField(PERSON_LABELS["full_name"], validators=[Optional(), Length(max=255)])
    date_of_birth = StringField(
        PERSON_LABELS["date_of_birth"],
        validators=[Optional(), Length(max=20)],
        render_kw={"placeholder": "dd/mm/yyyy", "inputmode": "numeric"},
    )
    ward = SelectField(PERSON_LABELS["ward"], choices=[], validators=[Optional()], validate_choice=False)
    phone = StringField(
        PERSON_LABELS["phone"], validators=[Length(max=20)], render_kw={"inputmode": "tel", "autocomplete": "tel"}
    )


class ResendForm(FlaskForm):
    """Only the CSRF token: the details come from the browser's open challenge."""


def _person_form(formdata=None):
    form = PersonForm(formdata=formdata) if formdata is not None else PersonForm()
    form.ward.choices = ward_choices()
    return form


def _fail(errors, name, message):
    errors.setdefault(name, []).append(str(message))


def check_person(form, errors):
    """The person's details, normalised: a dict, or None with errors[field] filled in."""
    data = form.data
    person = {"for_whom": data["for_whom"], "identify_by": data["identify_by"]}
    if data["for_whom"] not in ("self", "other"):
        _fail(errors, "for_whom", _("Choose who the declaration is for."))
    if data["for_whom"] == "other":
        name = " ".join((data["declarant_name"] or "").split())
        if not name:
            _fail(errors, "declarant_name", _("Type your own full name."))
        if data["declarant_relation"] not in dict(RELATIONS):
            _fail(errors, "declarant_relation", _("Choose how you are related to the person."))
        person.update(declarant_name=name, declarant_relation=data["declarant_relation"])
    try:
        person["phone"] = normalize_phone(data["phone"])
        if not person["phone"]:
            _fail(errors, "phone", _("The phone number is required: the code is sent to it."))
    except FieldError as exc:
        _fail(errors, "phone", exc.message)
    if data["identify_by"] == "health_code":
        try:
            person["health_code"] = normalize_health_code(data["health_code"])
            if not person["health_code"]:
                _fail(errors, "health_code", _("Type the personal health code, or choose to give the details."))
        except FieldError as exc:
            _fail(errors, "health_code", exc.message)
    elif data["identify_by"] == "details":
        person["full_name"] = " ".join((data["full_name"] or "").split())
        if not person["full_name"]:
            _fail(errors, "full_name", _("The full name is required."))
        try:
            person["date_of_birth"] = validate_birth_date(data["date_of_birth"], today=clock.now().date())
            if person["date_of_birth"] is None:
                _fail(errors, "date_of_birth", _("The date of birth is required."))
        except FieldError as exc:
            _fail(errors, "date_of_birth", exc.message)
        ward = (data["ward"] or "").strip()
        if not ward.isdigit() or ward not in {choice.value for choice in ward_choices()}:
            _fail(errors, "ward", _("Choose the commune or ward where the person lives."))
        else:
            person["ward"] = int(ward)
    else:
        _fail(errors, "identify_by", _("Choose how to find the person."))
    return None if errors else person


def check_answers(questions, formdata, errors):
    """{code: cleaned answer}; errors["q_<code>"] for each bad one."""
    answers = {}
    for question in questions:
        name = f"q_{question.code}"
        raw = formdata.getlist(name) if question.kind == QuestionKind.MULTIPLE else formdata.get(name, "")
        try:
            answers[question.code] = question.parse_answer(raw)
        except FieldError as exc:
            _fail(errors, name, exc.message)
    return answers


def offered_version(version_id=None, checklist_id=None):
    """(checklist, version) a citizen may answer, or (None, None)."""
    checklists = list(Checklist.offered())
    if version_id is not None:
        version = ChecklistVersion.get_or_none(ChecklistVersion.id == version_id)
        if version is None or not version.is_published:
            return None, None
        checklist = next((c for c in checklists if c.id == version.checklist_id), None)
        return (checklist, version) if checklist else (None, None)
    if checklist_id is not None:
        checklists = [c for c in checklists if c.id == checklist_id]
    if len(checklists) != 1:
        return None, None
    return checklists[0], checklists[0].current_version()


def _render_form(checklist, version, form, answers=None, errors=None, status=200):
    errors = errors or {}
    for name, messages in errors.items():
        if name in form and name != "csrf_token":
            form[name].errors = list(messages)
    labels = {**PERSON_LABELS, **{f"q_{q.code}": q.text for q in version.ordered_questions()}}
    summary = [(name, labels.get(name, name), message) for name, messages in errors.items() for message in messages]
    return (
        render_template(
            "public/declare.html",
            checklist=checklist,
            version=version,
            questions=version.ordered_questions(),
            form=form,
            answers=answers or {},
            errors=errors,
            summary=summary,
            kinds=QuestionKind,
        ),
        status,
    )


def _audit(outcome, citizen_id=None, **detail):
    AuditEvent.record(
        Action.LOOKUP,
        object_type="declaration",
        citizen_id=citizen_id,
        address=request.remote_addr,
        outcome=outcome,
        **detail,
    )


@bp.after_request
def _never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/declare")
def start():
    checklist_id = request.args.get("checklist", type=int)
    checklist, version = offered_version(checklist_id=checklist_id)
    if version is None:
        offered = list(Checklist.offered())
        if checklist_id is not None or not offered:
            return render_template("public/declare_choose.html", checklists=offered), 404 if checklist_id else 200
        return render_template("public/declare_choose.html", checklists=offered)
    return _render_form(checklist, version, _person_form(formdata=None))


@bp.post("/declare")
def submit():
    version_id = request.form.get("version", type=int)
    checklist, version = offered_version(version_id=version_id) if version_id else (None, None)
    if version is None:
        flash(_("This checklist is no longer open. Please choose one again."), "error")
        return redirect(url_for("declare.start"), 303)
    form = _person_form()
    errors = {}
    if not form.validate_on_submit():
        for name, messages in form.errors.items():
            for message in messages:
                _fail(errors, "csrf_token" if name == "csrf_token" else name, message)
        if "csrf_token" in errors:
            errors["csrf_token"] = [_("The form has expired. Please fill it in again.")]
    person = check_person(form, errors)
    answers = check_answers(version.ordered_questions(), request.form, errors)
    if errors:
        raw = {k: request.form.getlist(k) for k in request.form if k.startswith("q_")}
        return _render_form(checklist, version, form, raw, errors, status=400)
    outcome = _send_code(version, person, answers)
    if outcome != "sent":
        message, status = _refusal(outcome)
        flash(message, "error")
        raw = {k: request.form.getlist(k) for k in request.form if k.startswith("q_")}
        return _render_form(checklist, version, form, raw, status=status)
    return render_template("public/declare_verify.html", form=VerifyForm(formdata=None), resend=ResendForm())


def _refusal(outcome):
    if outcome == "limited":
        return _("Too many codes were requested for these details. Please try again in an hour."), 429
    return _("Text messages cannot be sent right now. Please try again later."), 503


def _find_citizen(person):
    """The citizen record the details name, or None; a health code must come with the phone on file."""
    if person["identify_by"] == "health_code":
        return Citizen.get_or_none((Citizen.health_code == person["health_code"]) & (Citizen.phone == person["phone"]))
    candidates = list(
        Citizen.select(Citizen.id, Citizen.full_name)
        .where((Citizen.ward == person["ward"]) & (Citizen.date_of_birth == person["date_of_birth"]))
        .limit(20)
    )
    folded = fold(person["full_name"])
    matches = [c for c in candidates if fold(c.full_name) == folded]
    return matches[0] if len(matches) == 1 else None


def _send_code(version, person, answers, replaces=None):
    """Keep the filled form aside and text a code to the phone; the answer is the same whether the details match."""
    now = clock.now()
    sms = current_app.extensions["sms"]
    if sms.is_failing:
        _audit("sms_unavailable")
        return "unavailable"
    address = request.remote_addr
    keys = [f"phone:{person['phone']}", f"address:{address}"]
    if person.get("health_code"):
        keys = rate_limits.keys_for(person["phone"], person["health_code"], address)
    if not rate_limits.allow(keys, now):
        _audit("rate_limited")
        return "limited"
    citizen = _find_citizen(person)
    # With a health code the code goes only to the phone on file; details typed in are the person's own.
    deliverable = citizen is not None or person["identify_by"] == "details"
    payload = {
        "version": version.id,
        "person": {**person, "date_of_birth": str(person.get("date_of_birth") or "") or None},
        "citizen_id": citizen.id if citizen else None,
        "answers": answers,
    }
    with db.atomic():
        DeclarationDraft.delete().where(DeclarationDraft.expires_at < now).execute()
        if replaces:
            DeclarationDraft.delete().where(DeclarationDraft.token == replaces).execute()
        challenge, code = otp.start(
            current_app.config["SECRET_KEY"],
            now,
            citizen.id if citizen else None,
            person["phone"],
            person.get("health_code"),
            replaces=replaces,
            purpose="declare",
            sent=deliverable,
        )
        DeclarationDraft.create(
            token=challenge.token, payload=json.dumps(payload, ensure_ascii=False), expires_at=challenge.expires_at
        )
    if deliverable:
        sms.submit(person["phone"], unaccented(_("Risk declaration code: %(code)s. Valid for 5 minutes.", code=code)))
    session[SESSION_CHALLENGE] = challenge.token
    _audit("sent" if deliverable else "no_match", citizen.id if citizen else None, resend=bool(replaces))
    return "sent"


@bp.post("/declare/resend")
def resend():
    form = ResendForm()
    token = session.get(SESSION_CHALLENGE, "")
    draft = DeclarationDraft.get_or_none(DeclarationDraft.token == token)
    if not form.validate_on_submit() or draft is None:
        flash(_("Please fill in the declaration again."), "error")
        return redirect(url_for("declare.start"), 303)
    payload = json.loads(draft.payload)
    version = ChecklistVersion.get_or_none(ChecklistVersion.id == payload["version"])
    if version is None:
        return redirect(url_for("declare.start"), 303)
    person = payload["person"]
    outcome = _send_code(version, person, payload["answers"], replaces=token)
    if outcome != "sent":
        message, status = _refusal(outcome)
        flash(message, "error")
        return render_template("public/declare_verify.html", form=VerifyForm(formdata=None), resend=form), status
    flash(_("A new code was sent. The previous code no longer works."), "info")
    return render_template("public/declare_verify.html", form=VerifyForm(formdata=None), resend=ResendForm())


@bp.post("/declare/verify")
def verify():
    form = VerifyForm()
    if not form.validate_on_submit():
        return render_template("public/declare_verify.html", form=form, resend=ResendForm()), 400
    now = clock.now()
    token = session.get(SESSION_CHALLENGE)
    outcome, challenge = otp.check(current_app.config["SECRET_KEY"], token, form.otp.data, now, purpose="declare")
    _audit(f"code_{outcome}", challenge.citizen_id if challenge else None)
    if outcome == "wrong":
        tries_left = otp.MAX_WRONG_TRIES - challenge.attempts - 1
        form.otp.errors.append(_("The code is not right. %(n)s tries left.", n=tries_left))
        return render_template("public/declare_verify.html", form=form, resend=ResendForm()), 400
    draft = DeclarationDraft.get_or_none(DeclarationDraft.token == (token or "")) if outcome == "ok" else None
    if draft is None:
        session.pop(SESSION_CHALLENGE, None)
        flash(_("This code can no longer be used. Please fill in the declaration again."), "error")
        return redirect(url_for("declare.start"), 303)
    declaration, case, opened = _record(draft, now)
    session.pop(SESSION_CHALLENGE, None)
    session[SESSION_DONE] = declaration.number
    return redirect(url_for("declare.done"), 303)


def _record(draft, now):
    """Turn the confirmed draft into a declaration, once, and tell the unit when the risk is high."""
    payload = json.loads(draft.payload)
    person = payload["person"]
    version = ChecklistVersion.get_by_id(payload["version"])
    citizen = Citizen.get_or_none(Citizen.id == payload["citizen_id"]) if payload["citizen_id"] else None
    if citizen is not None:
        subject = {
            "citizen_id": citizen.id,
            "full_name": citizen.full_name,
            "date_of_birth": citizen.date_of_birth,
            "phone": person["phone"],
            "ward": citizen.ward_id,
        }
    else:
        subject = {
            "citizen_id": None,
            "full_name": person["full_name"],
            "date_of_birth": datetime.date.fromisoformat(person["date_of_birth"]),
            "phone": person["phone"],
            "ward": person["ward"],
        }
    with db.atomic():
        DeclarationDraft.delete().where(DeclarationDraft.id == draft.id).execute()
        declaration, case, opened = declare(
            version,
            subject,
            payload["answers"],
            now,
            declarant_name=person.get("declarant_name"),
            declarant_relation=person.get("declarant_relation"),
        )
        AuditEvent.record(
            Action.CREATE,
            object_type="declaration",
            object_id=declaration.id,
            citizen_id=subject["citizen_id"],
            address=request.remote_addr,
            by="citizen",
            case=case.number,
            opened_case=opened,
            risk_level=declaration.risk_level,
        )
    if declaration.risk_level == RiskLevel.HIGH:
        notify_unit(case)
    return declaration, case, opened


def notify_unit(case):
    """E-mail the responsible unit about a high-risk case: its number, risk level and link, nothing personal."""
    unit = HealthUnit.get_or_none(HealthUnit.id == case.unit_id) if case.unit_id else None
    address = notification_address(unit)
    if address is None:
        current_app.logger.warning("High-risk case %s has no unit e-mail to notify", case.number)
        return False
    link = url_for("risk_case.details_view", id=case.id, _external=True)
    with force_locale("vi"):
        subject = _("High-risk case %(number)s", number=case.number)
        body = _(
            "A declaration puts case %(number)s at risk level: %(level)s.\n\n"
            "Open the case in the back office (sign-in required):\n%(link)s\n\n"
            "This message holds no personal data; the details are in the back office only.",
            number=case.number,
            level=RiskLevel.LABELS[case.risk_level],
            link=link,
        )
    current_app.extensions["mail"].submit(mail.message(address, subject, body))
    return True


@bp.get("/declare/done")
def done():
    number = session.get(SESSION_DONE)
    declaration = (
        Declaration.select(Declaration.number, Declaration.risk_level, Declaration.declared_at)
        .where(Declaration.number == (number or ""))
        .first()
    )
    if declaration is None:
        return redirect(url_for("declare.start"), 303)
    qr = Markup(segno.make(declaration.number, error="m").svg_inline(scale=5))
    return render_template("public/declare_done.html", declaration=declaration, qr=qr, levels=RiskLevel.LABELS)


@bp.app_template_global()
def past_declarations(citizen_id):
    """A citizen's declarations for the record page, newest first."""
    if not citizen_id:
        return []
    return _PAST_DECLARATIONS(citizen_id, 20)


_PAST_DECLARATIONS = PreparedQuery(lambda citizen_id, limit: Declaration.of_citizen(citizen_id, limit=limit))


@bp.app_context_processor
def risk_labels():
    return {
        "risk_label": lambda code: RiskLevel.LABELS.get(code, code or ""),
        "case_status_label": lambda code: CaseStatus.LABELS.get(code, code or ""),
    }
