"""Settings: every one documented in the README, parsed strictly, defaults as in SPEC.md."""

import os
import re
from pathlib import Path

import pytest

import config

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_settings():
    """Names in the first column of the table under README.md's "## Settings" heading."""
    names = []
    in_section = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_section = line.strip() == "## Settings"
        elif in_section and line.startswith("|"):
            first_cell = line.strip("|").split("|")[0]
            names.extend(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_every_setting_is_in_the_readme_table():
    documented = readme_settings()
    missing = [s.name for s in config.SETTINGS if s.name not in documented]
    assert not missing, f"add these settings to the table under '## Settings' in README.md: {missing}"


def test_the_readme_table_lists_only_settings_that_exist():
    declared = [s.name for s in config.SETTINGS]
    assert sorted(readme_settings()) == sorted(declared)


def test_every_setting_has_a_help_text():
    assert all(s.help for s in config.SETTINGS)
    assert len({s.name for s in config.SETTINGS}) == len(config.SETTINGS)


def test_defaults_match_the_spec():
    settings = config.load_settings({})
    assert settings["DATABASE_URL"] == "sqlite:///instance/portal.db"
    assert settings["TEST_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/test"
    assert settings["SMS_BACKEND"] == "console"
    assert settings["SMS_OUTBOX"] == "instance/sms-outbox.jsonl"
    assert settings["SMTP_URL"] == ""
    assert settings["SECRET_KEY"] == ""  # generated once into instance/ by create_app
    assert settings["HOST"] == "127.0.0.1"
    assert settings["PORT"] == 8080


def test_it_reads_values_from_the_environment():
    settings = config.load_settings(
        {
            "DATABASE_URL": "postgresql://portal@db.example.vn:5432/portal",
            "SMS_BACKEND": "file",
            "SMTP_URL": "smtp://mail.example.vn:25",
            "PORT": "9000",
            "HOST": "0.0.0.0",
        }
    )
    assert settings["DATABASE_URL"] == "postgresql://portal@db.example.vn:5432/portal"
    assert settings["SMS_BACKEND"] == "file"
    assert settings["SMTP_URL"] == "smtp://mail.example.vn:25"
    assert settings["PORT"] == 9000
    assert settings["HOST"] == "0.0.0.0"


def test_web_processes_is_one_per_core_unless_set():
    assert config.load_settings({})["WEB_PROCESSES"] == max(1, min(os.cpu_count() or 1, 8))
    assert config.load_settings({"WEB_PROCESSES": "3"})["WEB_PROCESSES"] == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("SMS_BACKEND", "pigeon"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "instance/portal.db"),
        ("TEST_DATABASE_URL", "mysql://x"),
        ("SMTP_URL", "http://mail.example.vn"),
        ("SECRET_KEY", "short"),
        ("WEB_PROCESSES", "0"),
        ("WEB_PROCESSES", "many"),
        ("WEB_PROCESSES", "65"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_setting(name, value):
    with pytest.raises(config.ConfigError, match=rf"^{name}="):
        config.load_settings({name: value})
