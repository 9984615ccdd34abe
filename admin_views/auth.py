"""Staff sign-in, sign-out and the forced password change."""

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length

from models.accounts import Staff
from models.audit import Action
from models.audit import AuditEvent
from models.base import db
from models.validation import FieldError
from services import passwords
from services.safe_urls import local_target

bp = Blueprint("auth", __name__, url_prefix="/admin")


class SignInForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=256)])
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=passwords.MIN_PASSWORD_LENGTH, max=256)]
    )
    confirm = PasswordField(
        _l("Repeat the new password"), validators=[DataRequired(), EqualTo("new_password", _l("The passwords differ."))]
    )


def _sign_in(account):
    # A fresh session on every sign-in, so a session id planted before it is worthless.
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(account)


@bp.route("/login/", methods=["GET", "POST"])
def login():
    form = SignInForm()
    target = local_target(request.args.get("next"), url_for("admin.index"))
    if form.validate_on_submit():
        account, outcome = Staff.authenticate(form.username.data, form.password.data)
        if outcome == "ok":
            _sign_in(account)
            AuditEvent.record(
                Action.SIGN_IN, actor=account, object_type="staff", object_id=account.id, address=request.remote_addr
            )
            if account.must_change_password:
                return redirect(url_for("auth.change_password", next=target))
            return redirect(target)
        AuditEvent.record(
            Action.FAILED_SIGN_IN,
            actor=account,
            object_type="staff",
            object_id=getattr(account, "id", None),
            address=request.remote_addr,
            username=(form.username.data or "")[:64],
            outcome=outcome,
        )
        if outcome == "locked":
            flash(_("Too many failed sign-ins: the account is locked for 15 minutes."), "error")
        elif outcome == "inactive":
            flash(_("This account is disabled. Ask your unit's administrator."), "error")
        else:
            flash(_("Wrong user name or password."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.route("/password/", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    target = local_target(request.args.get("next"), url_for("admin.index"))
    if form.validate_on_submit():
        if not passwords.verify_password(current_user.password_hash, form.current_password.data):
            form.current_password.errors.append(_("The current password is wrong."))
        elif form.new_password.data == form.current_password.data:
            form.new_password.errors.append(_("Choose a password different from the current one."))
        else:
            account = Staff.get_by_id(current_user.id)
            try:
                with db.atomic():
                    account.set_password(form.new_password.data)
                    account.save()
                    AuditEvent.record(
                        Action.PASSWORD_CHANGE,
                        actor=account,
                        object_type="staff",
                        object_id=account.id,
                        address=request.remote_addr,
                    )
            except FieldError as exc:
                form.new_password.errors.append(str(exc.message))
            else:
                _sign_in(account)
                flash(_("Your password was changed."), "success")
                return redirect(target)
    return render_template("auth/change_password.html", form=form, forced=current_user.must_change_password)


@bp.route("/logout/", methods=["POST"])
def logout():
    form = FlaskForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        AuditEvent.record(
            Action.SIGN_OUT,
            actor=current_user,
            object_type="staff",
            object_id=current_user.id,
            address=request.remote_addr,
        )
        logout_user()
        session.clear()
    return redirect(url_for("auth.login"))
