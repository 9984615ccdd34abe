"""How dates and identifiers are shown to people: dd/mm/yyyy, Vietnam time, masked numbers."""

import datetime
import zoneinfo

LOCAL_TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def format_date(value):
    """dd/mm/yyyy, as Vietnamese offices write dates."""
    return value.strftime("%d/%m/%Y") if value else ""


def format_datetime(value):
    """dd/mm/yyyy HH:MM in Vietnam time; stored values are naive UTC."""
    if not value:
        return ""
    return value.replace(tzinfo=datetime.UTC).astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def masked(value, keep=3):
    """Only the last digits of an identifier: ••••••••••123."""
    if not value:
        return ""
    value = str(value)
    keep = min(keep, max(1, len(value) // 3))
    return "•" * (len(value) - keep) + value[-keep:]
