"""The provincial health data portal: create_app builds it, running this file serves it."""

import logging
import os
import sys
from pathlib import Path

from flask import Flask
from flask import g
from flask import request
from flask import session
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import generate_csrf

import config
from models.base import db
from models.base import open_database

LANGUAGES = ("vi", "en")
log = logging.getLogger("portal")


def select_locale():
    """Vietnamese unless the visitor chose English."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else "vi"


def create_app(test_config=None):
    """Build the portal: settings, database, translations, sign-in, public site and back office."""
    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR), instance_relative_config=True)
    app.config.update(config.load_settings())
    app.config.update(
        BABEL_DEFAULT_LOCALE="vi",
        BABEL_DEFAULT_TIMEZONE="Asia/Ho_Chi_Minh",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        EXPORT_MAX_ROWS=50_000,
        PASSWORD_HASH_COST=None,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.persistent_secret_key(app.instance_path)
    if app.config["PASSWORD_HASH_COST"]:
        from services import passwords

        passwords.configure(**app.config["PASSWORD_HASH_COST"])

    if app.config["TRUSTED_PROXIES"]:
        # The client's address (audit log, per-address send limits) as the proxies saw it, not the
        # last proxy's: behind one proxy every citizen of the province would share one address.
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    db.initialize(open_database(app.config["DATABASE_URL"], pooled=True))
    app.before_request(_open_connection)
    app.teardown_request(_close_connection)
    app.after_request(_security_headers)

    Babel(app, locale_selector=select_locale, default_translation_directories="translations")
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = select_locale
    # Not "csrf_token": Flask-Admin's form macro would add a second, foreign token to its own forms.
    app.jinja_env.globals["portal_csrf_token"] = generate_csrf

    _init_login(app)
    _init_sms(app)
    _init_jobs(app)
    _init_mail(app)

    from admin_views import init_admin
    from admin_views.auth import bp as auth_bp
    from cli import register_commands
    from public import bp as public_bp
    from public.api import bp as api_bp
    from public.api import register_json_errors
    from public.declare import bp as declare_bp
    from public.fhir import bp as fhir_bp
    from public.lookup import bp as lookup_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(lookup_bp)
    app.register_blueprint(declare_bp)
    app.register_blueprint(fhir_bp)
    # Token-authenticated, never cookie-authenticated: it needs no CSRF token (no CSRFProtect is global).
    app.register_blueprint(api_bp)
    register_json_errors(app)
    app.register_blueprint(auth_bp)
    init_admin(app)
    register_commands(app)
    return app


def _init_login(app):
    from models.accounts import Staff

    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = None
    login.session_protection = "strong"
    login.user_loader(Staff.from_session_id)


def _init_sms(app):
    from services.sms import Dispatcher
    from services.sms import backend_from_config

    app.extensions["sms"] = Dispatcher(backend_from_config(app.config))


def _init_mail(app):
    from services.mail import Mailer
    from services.mail import backend_from_config

    app.extensions["mail"] = Mailer(backend_from_config(app.config))


def _init_jobs(app):
    """The background worker for long exports; it starts with the first job (not in tests)."""
    from services import report_files  # noqa: F401  (registers the export and dashboard jobs)
    from services.jobs import Runner

    app.config.setdefault("JOBS_WORKER", not app.testing)
    result_dir = app.config.get("EXPORT_DIR") or str(Path(app.instance_path) / "exports")
    app.extensions["jobs"] = Runner(app, result_dir)


def _open_connection():
    db.connect(reuse_if_open=True)
    g.client_address = request.remote_addr


def _close_connection(exc):
    if not db.is_closed():
        db.close()


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/admin"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def main():
    """Serve with waitress under the environment's configuration."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = config.load_settings()  # a bad setting stops here, before any process starts
    if not settings["SECRET_KEY"]:
        config.persistent_secret_key()  # created once here, not raced for by the processes
    host, port, processes = settings["HOST"], settings["PORT"], settings["WEB_PROCESSES"]
    base = f"http://{host}:{port}"
    print(f"Public site:  {base}/", flush=True)
    print(f"Back office:  {base}/admin/  (sign in with a personal account; the first sign-in", flush=True)
    print("              asks for a new password. New accounts: flask --app app create-user ...)", flush=True)
    if processes == 1:
        serve_forever(create_app(), host=host, port=port)
    else:
        serve_in_processes(processes, host, port, create_app)


def serve_forever(app, **where):
    from waitress import serve

    # Waitress drops X-Forwarded-* headers by default; with trusted proxies, ProxyFix reads them.
    serve(app, clear_untrusted_proxy_headers=not app.config["TRUSTED_PROXIES"], **where)


def serve_in_processes(count, host, port, factory):
    """Bind once, then fork `count` waitress processes that accept on the same socket.

    One Python process runs on one core at a time. Sessions, send limits and one-time codes
    live in the database, so the processes share nothing that matters in memory. Each child
    builds its own app with factory(), and so its own database connections, after the fork.
    """
    import signal
    import socket

    listener = socket.create_server((host, port), backlog=1024)
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                serve_forever(factory(), sockets=[listener])
            except KeyboardInterrupt:
                pass
            except BaseException:
                log.exception("the server process failed")
                code = 1
            os._exit(code)
        children.append(pid)
    listener.close()
    log.info("serving on %s:%s with %s processes: %s", host, port, count, ", ".join(map(str, children)))

    stopping = []

    def stop(signum=None, frame=None):
        if signum is not None:
            stopping.append(signum)
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # When one process ends on its own (a crash), the others are stopped too: the service is
    # down as a whole and its supervisor (systemd, make run's terminal) sees it.
    _pid, status = os.wait()
    stop()
    for _ in children[1:]:
        try:
            os.wait()
        except ChildProcessError:
            break
    if stopping:
        log.info("stopped on signal %s", stopping[0])
        sys.exit(0)
    log.error("a server process ended with status %s; stopped the others", status)
    sys.exit(1)


if __name__ == "__main__":
    main()
