"""Citizens → Import: upload a paper-form spreadsheet, preview a dry run, then import it in the background."""

import re
import secrets
import time
from pathlib import Path

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import request
from flask import send_file
from flask import session
from flask_admin import BaseView
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user

from admin_views.base import SignInFirst
from admin_views.jobs import own_job_or_404
from admin_views.jobs import runner_if_enabled
from admin_views.jobs import wake_worker_for
from admin_views.jobs import with_live_progress
from admin_views.reports import check_csrf
from admin_views.scoping import allowed
from admin_views.scoping import current_scope
from models.jobs import JobStatus
from services import citizen_import
from services.display import format_datetime
from services.jobs import enqueue

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PREVIEW_REJECTED_ROWS = 20
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_TOKEN = re.compile(r"[0-9a-f]{32}")
SESSION_KEY = "citizen_imports"


# Uploads previewed but never imported are removed after this long (seconds).
KEEP_UPLOADS_FOR = 24 * 3600


def upload_dir():
    return Path(current_app.config.get("IMPORT_DIR") or Path(current_app.instance_path) / "imports")


def remove_old_uploads(folder):
    """Uploads and rejected-rows files older than KEEP_UPLOADS_FOR: nobody will import them now."""
    cutoff = time.time() - KEEP_UPLOADS_FOR
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


class CitizenImportView(SignInFirst, BaseView):
    """For accounts that may create citizens; every row is checked against the account's scope."""

    def is_accessible(self):
        return allowed("create", "citizen")

    @expose("/")
    def index(self):
        return self.render("admin/import_upload.html", max_mb=MAX_UPLOAD_BYTES // (1024 * 1024))

    @expose("/template.xlsx")
    def template(self):
        from io import BytesIO

        return send_file(
            BytesIO(citizen_import.template_workbook()),
            mimetype=XLSX_TYPE,
            as_attachment=True,
            download_name="mau-nhap-cong-dan.xlsx",
        )

    @expose("/preview", methods=["POST"])
    def preview(self):
        """Save the upload and show what importing it would do; nothing is written yet."""
        if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
            flash(
                _("The file is larger than %(mb)s MB: split it into smaller files.", mb=MAX_UPLOAD_BYTES >> 20), "error"
            )
            return redirect(self.get_url(".index"))
        check_csrf()
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a file to import."), "error")
            return redirect(self.get_url(".index"))
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in (".xlsx", ".csv"):
            flash(_("Upload an Excel (.xlsx) or CSV (.csv) file."), "error")
            return redirect(self.get_url(".index"))
        token = secrets.token_hex(16)
        folder = upload_dir()
        folder.mkdir(parents=True, exist_ok=True)
        remove_old_uploads(folder)
        path = folder / f"{token}{suffix}"
        upload.save(path)
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            path.unlink()
            flash(
                _("The file is larger than %(mb)s MB: split it into smaller files.", mb=MAX_UPLOAD_BYTES >> 20), "error"
            )
            return redirect(self.get_url(".index"))
        file_name = Path(upload.filename).name
        try:
            result = citizen_import.import_citizens(
                path,
                current_scope(),
                actor=current_user._get_current_object(),
                dry_run=True,
                source="web",
                file_name=file_name,
                rejected_path=folder / f"{token}-rejected.xlsx",
            )
        except citizen_import.ImportFileError as exc:
            path.unlink(missing_ok=True)
            flash(_("%(file)s: %(reason)s", file=file_name, reason=exc.message), "error")
            return redirect(self.get_url(".index"))
        session[SESSION_KEY] = {**session.get(SESSION_KEY, {}), token: {"file": file_name, "rows": result.total}}
        return self.render(
            "admin/import_preview.html",
            result=result,
            token=token,
            file_name=file_name,
            rejected=result.rejected[:PREVIEW_REJECTED_ROWS],
        )

    def own_upload_or_404(self, token):
        upload = session.get(SESSION_KEY, {}).get(token) if _TOKEN.fullmatch(token or "") else None
        if upload is None:
            abort(404)
        return upload

    @expose("/<token>/rejected.xlsx")
    def rejected(self, token):
        upload = self.own_upload_or_404(token)
        path = upload_dir() / f"{token}-rejected.xlsx"
        if not path.exists():
            abort(404)
        name = f"{Path(upload['file']).stem}-rejected.xlsx"
        return send_file(path, mimetype=XLSX_TYPE, as_attachment=True, download_name=name)

    @expose("/confirm", methods=["POST"])
    def confirm(self):
        """Import the previewed file as a background job; the job page shows its progress."""
        check_csrf()
        token = request.form.get("token", "")
        upload = self.own_upload_or_404(token)
        matches = list(upload_dir().glob(f"{token}.*"))
        if not matches:
            abort(404)
        params = {
            "path": str(matches[0]),
            "file_name": upload["file"],
            "rows": upload["rows"],
            "actor_id": current_user.id,
        }
        job = enqueue("import_citizens", params, owner=current_user.id, runner=runner_if_enabled())
        uploads = dict(session.get(SESSION_KEY, {}))
        uploads.pop(token, None)
        session[SESSION_KEY] = uploads
        return redirect(self.get_url(".job_page", job_id=job.id))

    @expose("/jobs/<int:job_id>/")
    def job_page(self, job_id):
        job = with_live_progress(own_job_or_404(job_id, kind="import_citizens"))
        wake_worker_for(job)
        return self.render("admin/import_job.html", job=job, statuses=JobStatus, format_datetime=format_datetime)

    @expose("/jobs/<int:job_id>/rejected.xlsx")
    def job_rejected(self, job_id):
        job = own_job_or_404(job_id, kind="import_citizens")
        if job.status != JobStatus.DONE or not job.result_path or not Path(job.result_path).exists():
            abort(404)
        return send_file(job.result_path, mimetype=XLSX_TYPE, as_attachment=True, download_name=job.result_name)
