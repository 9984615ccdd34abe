"""Settings: declared once, parsed strictly, read from the environment."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

INSTANCE_DIR = Path(__file__).resolve().parent / "instance"


class ConfigError(Exception):
    """A setting has a value the portal cannot use."""


def _database_url(value):
    scheme = urlparse(value).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "postgresext", "postgresqlext"}:
        raise ValueError("expected sqlite:///path or postgresql://user@host:port/name")
    return value


def _sms_backend(value):
    if value not in {"console", "file", "http"}:
        raise ValueError("expected one of console, file, http")
    return value


def _smtp_url(value):
    if value and urlparse(value).scheme not in {"smtp", "smtps"}:
        raise ValueError("expected smtp://host:port")
    return value


def _port(value):
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError("expected a TCP port 1-65535")
    return port


def _secret_key(value):
    if value and len(value) < 16:
        raise ValueError("expected at least 16 characters")
    return value


def _http_url(value):
    if value and urlparse(value).scheme not in {"http", "https"}:
        raise ValueError("expected http://... or https://...")
    return value


def _header(value):
    if value and ":" not in value:
        raise ValueError("expected 'Name: value'")
    return value


def _body_template(value):
    if "{to}" not in value or "{text}" not in value:
        raise ValueError("the template must contain {to} and {text}")
    return value


def _positive_float(value):
    number = float(value)
    if not 0 < number <= 120:
        raise ValueError("expected seconds between 0 and 120")
    return number


def _small_int(value):
    number = int(value)
    if not 0 <= number <= 10:
        raise ValueError("expected a whole number from 0 to 10")
    return number


def _proxies(value):
    number = int(value)
    if not 0 <= number <= 5:
        raise ValueError("expected a whole number from 0 to 5")
    return number


def _processes(value):
    if value == "auto":
        return max(1, min(os.cpu_count() or 1, 8))
    number = int(value)
    if not 1 <= number <= 64:
        raise ValueError("expected auto or a whole number from 1 to 64")
    return number


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: object = str


SETTINGS = (
    Setting(
        "DATABASE_URL",
        "sqlite:///instance/portal.db",
        "any URL peewee's playhouse.db_url accepts; postgresql://... for production",
        _database_url,
    ),
    Setting(
        "TEST_DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/test",
        "the PostgreSQL the tests use when it answers",
        _database_url,
    ),
    Setting(
        "SECRET_KEY",
        "",
        "session signing; when unset one is generated once and kept in instance/secret_key",
        _secret_key,
    ),
    Setting("SMS_BACKEND", "console", "console (log it), file (append to SMS_OUTBOX), http (a gateway)", _sms_backend),
    Setting("SMS_OUTBOX", "instance/sms-outbox.jsonl", "JSON lines written by the file SMS backend"),
    Setting(
        "SMS_HTTP_URL", "", "the gateway URL the http SMS backend posts to (required with SMS_BACKEND=http)", _http_url
    ),
    Setting("SMS_HTTP_AUTH_HEADER", "", "optional header sent to the gateway, as 'Name: value'", _header),
    Setting(
        "SMS_HTTP_BODY_TEMPLATE",
        '{"to": {to}, "text": {text}}',
        "JSON body posted to the gateway; {to} and {text} become JSON strings",
        _body_template,
    ),
    Setting("SMS_HTTP_TIMEOUT", "5", "seconds to wait for the gateway", _positive_float),
    Setting("SMS_HTTP_RETRIES", "2", "retries after a gateway error or timeout, with exponential backoff", _small_int),
    Setting("SMTP_URL", "", "smtp://host:port for notifications to units; unset means mail is logged", _smtp_url),
    Setting("HOST", "127.0.0.1", "address make run and app.py serve on"),
    Setting("PORT", "8080", "port make run and app.py serve on", _port),
    Setting(
        "WEB_PROCESSES",
        "auto",
        "waitress processes sharing HOST:PORT, each with waitress's 4 threads; auto is one per CPU core (at most 8)",
        _processes,
    ),
    Setting(
        "TRUSTED_PROXIES",
        "0",
        "how many reverse proxies in front of the portal add the client's address to X-Forwarded-For; "
        "0 ignores the header (anyone could write it)",
        _proxies,
    ),
)


def load_settings(environ=None):
    """Return a dict of every setting, parsed; raise ConfigError naming a bad one."""
    environ = os.environ if environ is None else environ
    values = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.name}={raw!r} is not valid: {exc}") from exc
    if values["SMS_BACKEND"] == "http" and not values["SMS_HTTP_URL"]:
        raise ConfigError("SMS_BACKEND=http needs SMS_HTTP_URL")
    return values


def persistent_secret_key(instance_dir=INSTANCE_DIR):
    """Read the generated secret key, creating it once on first use."""
    path = Path(instance_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
