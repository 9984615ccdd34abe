"""Risk checklists, declarations and cases (issue 4), with the default infectious-disease checklist.

One-time codes also serve declarations: lookup_challenge gains purpose and sent.
"""

from peewee import BooleanField
from peewee import CharField
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate

from models.base import utcnow
from models.risk import CaseEvent
from models.risk import Checklist
from models.risk import ChecklistVersion
from models.risk import Declaration
from models.risk import DeclarationDraft
from models.risk import Disease
from models.risk import Question
from models.risk import QuestionKind
from models.risk import RiskCase
from models.risk import unique_open_case_index

DISEASES = (
    ("COVID19", "COVID-19"),
    ("DENGUE", "Sốt xuất huyết Dengue"),
    ("MEASLES", "Sởi"),
    ("HFMD", "Tay chân miệng"),
    ("INFLUENZA", "Cúm"),
)

DEFAULT_CHECKLIST = "Bảng kiểm nguy cơ bệnh truyền nhiễm"
# (code, text, kind, options, weight, rule, required)
DEFAULT_QUESTIONS = (
    ("fever", "Trong 14 ngày qua, bạn có bị sốt (từ 37,5 °C trở lên) không?", QuestionKind.YES_NO, "", 2, "", True),
    ("temperature", "Nhiệt độ đo được gần nhất (°C), nếu có", QuestionKind.NUMBER, "", 2, ">= 38", False),
    ("cough", "Bạn có ho không?", QuestionKind.YES_NO, "", 1, "", True),
    ("breathing", "Bạn có khó thở không?", QuestionKind.YES_NO, "", 3, "", True),
    ("taste_smell", "Bạn có mất vị giác hoặc khứu giác không?", QuestionKind.YES_NO, "", 2, "", True),
    (
        "close_contact",
        "Trong 14 ngày qua, bạn có tiếp xúc gần với ca bệnh xác định hoặc nghi ngờ không?",
        QuestionKind.SINGLE,
        "confirmed | Có, với ca bệnh đã xác định | 4\nsuspected | Có, với ca nghi ngờ | 2\nnone | Không | 0",
        0,
        "",
        True,
    ),
    (
        "outbreak_travel",
        "Trong 14 ngày qua, bạn có đi về từ vùng đang có dịch không?",
        QuestionKind.YES_NO,
        "",
        2,
        "",
        True,
    ),  # fmt: skip
    ("return_date", "Ngày về từ vùng có dịch (nếu có)", QuestionKind.DATE, "", 1, "within 14", False),
    (
        "conditions",
        "Bạn có bệnh nền hoặc tình trạng nào sau đây không?",
        QuestionKind.MULTIPLE,
        "diabetes | Đái tháo đường | 1\nheart | Bệnh tim mạch, tăng huyết áp | 1\n"
        "lung | Bệnh phổi mạn tính | 1\npregnant | Đang mang thai | 1",
        0,
        "",
        False,
    ),
    ("other", "Thông tin thêm (triệu chứng khác, nơi đã đến…)", QuestionKind.TEXT, "", 0, "", False),
)
DEFAULT_FORCE_HIGH = "close_contact = confirmed & fever\nclose_contact = confirmed & breathing"


def _add_challenge_columns(database):
    columns = {c.name for c in database.get_columns("lookup_challenge")}
    migrator = SchemaMigrator.from_database(database)
    steps = []
    if "purpose" not in columns:
        steps.append(migrator.add_column("lookup_challenge", "purpose", CharField(max_length=16, default="lookup")))
    if "sent" not in columns:
        steps.append(migrator.add_column("lookup_challenge", "sent", BooleanField(default=False)))
        # Until now a code was texted exactly when the details matched a citizen.
    if steps:
        migrate(*steps)
        database.execute_sql("UPDATE lookup_challenge SET sent = (citizen_id IS NOT NULL)")


def seed_defaults():
    """The usual diseases and the default checklist (version 1, published); adds only what is missing."""
    for code, name in DISEASES:
        if not Disease.select().where(Disease.code == code).exists():
            Disease.create(code=code, name=name)
    if Checklist.select().where(Checklist.name == DEFAULT_CHECKLIST).exists():
        return None
    disease = Disease.get(Disease.code == "COVID19")
    checklist = Checklist.create(
        name=DEFAULT_CHECKLIST,
        disease=disease,
        description="Khai báo nguy cơ lây nhiễm: triệu chứng, tiếp xúc và đi lại trong 14 ngày qua.",
    )
    version = ChecklistVersion.create(
        checklist=checklist, number=1, medium_from=3, high_from=6, force_high=DEFAULT_FORCE_HIGH
    )
    for position, (code, text, kind, options, weight, rule, required) in enumerate(DEFAULT_QUESTIONS, start=1):
        Question.create(
            version=version,
            position=position * 10,
            code=code,
            text=text,
            kind=kind,
            options=options,
            weight=weight,
            rule=rule,
            required=required,
        )
    version.publish(now=utcnow())
    return checklist


def up(database):
    _add_challenge_columns(database)
    database.create_tables(
        [Disease, Checklist, ChecklistVersion, Question, RiskCase, Declaration, CaseEvent, DeclarationDraft], safe=True
    )
    unique_open_case_index(database)
    seed_defaults()
