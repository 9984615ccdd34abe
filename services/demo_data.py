"""Deterministic demo data for one province: health units, staff accounts, citizens and their records."""

import bisect
import datetime
import io
import multiprocessing
import random
import time
from array import array
from dataclasses import dataclass
from dataclasses import field

from peewee import fn

import config
from migrations.m0001_initial import SQLITE_SEARCH
from models.accounts import Role
from models.accounts import Staff
from models.base import db
from models.base import is_postgres
from models.base import utcnow
from models.citizens import FTS_DEFAULT_AUTOMERGE
from models.citizens import Citizen
from models.citizens import Household
from models.citizens import set_search_automerge
from models.places import Province
from models.places import Ward
from models.records import Vaccination
from models.records import Vaccine
from models.text import fold
from models.units import HealthUnit
from models.units import UnitKind
from models.validation import CCCD_PROVINCE_CODES
from models.validation import new_health_code

# The demo's "today": a fixed date, so that one seed always gives the same ages and visit dates.
REFERENCE_DATE = datetime.date(2025, 12, 31)
REFERENCE_DAY = REFERENCE_DATE.toordinal()
YEAR = 365.2425
PEOPLE_PER_BATCH = 10_000
PROGRESS_EVERY = 100_000
# From this many rows on, indexes are rebuilt after the load and rows are built in a child process.
BULK_THRESHOLD = 50_000

CITIZEN_COLUMNS = (
    "id", "full_name", "date_of_birth", "gender", "occupation", "ethnicity", "phone", "email", "national_id",
    "national_id_issued_on", "national_id_issued_by", "old_national_id", "insurance_number", "health_code",
    "ward_id", "permanent_address", "temporary_address", "household_id", "relation_to_head", "search_text",
)  # fmt: skip
HOUSEHOLD_COLUMNS = ("id", "book_number", "ward_id", "address")
RELATION_COLUMNS = ("citizen_id", "relative_id", "kind")
CONDITION_COLUMNS = ("citizen_id", "kind", "name", "icd10_code", "since", "notes")
ALLERGY_COLUMNS = ("citizen_id", "substance", "reaction", "severity")
ENCOUNTER_COLUMNS = (
    "citizen_id",
    "facility_id",
    "facility_name",
    "visit_id",
    "date",
    "icd10_code",
    "diagnosis",
    "summary",
)
VACCINATION_COLUMNS = ("citizen_id", "vaccine_id", "dose_number", "date", "site_id", "lot")

# code, name, disease, doses in the schedule, boosters allowed (the Expanded Programme on Immunisation).
VACCINES = (
    ("BCG", "Vắc xin phòng lao (BCG)", "Lao", 1, False),
    ("VGB", "Vắc xin viêm gan B", "Viêm gan B", 3, False),
    ("DPT-VGB-HIB", "Vắc xin 5 trong 1 (DPT-VGB-Hib)", "Bạch hầu, ho gà, uốn ván, viêm gan B, Hib", 3, False),
    ("OPV", "Vắc xin bại liệt uống (OPV)", "Bại liệt", 3, False),
    ("MR", "Vắc xin Sởi - Rubella", "Sởi, Rubella", 2, False),
    ("VNNB", "Vắc xin viêm não Nhật Bản", "Viêm não Nhật Bản", 3, False),
    ("COVID-19", "Vắc xin COVID-19", "COVID-19", 2, True),
    ("CUM", "Vắc xin cúm mùa", "Cúm mùa", 1, True),
)

# Share of the population, in per mille, roughly as in national surveys.
SURNAMES = (
    ("Nguyễn", 380), ("Trần", 110), ("Lê", 95), ("Phạm", 70), ("Hoàng", 51), ("Phan", 45), ("Vũ", 39),
    ("Đặng", 21), ("Bùi", 20), ("Huỳnh", 15), ("Đỗ", 14), ("Hồ", 13), ("Ngô", 13), ("Võ", 12), ("Dương", 10),
    ("Đinh", 8), ("Đào", 8), ("Trịnh", 7), ("Lý", 5), ("Hà", 6), ("Lương", 6), ("Mai", 5), ("Cao", 5),
    ("Lưu", 4), ("Tô", 3), ("Tạ", 3), ("Vương", 2),
)  # fmt: skip
# Older generations mostly carry Văn / Thị; the other middle names are more common among the young.
TRADITIONAL_MIDDLE = {"M": "Văn", "F": "Thị"}
MIDDLE_NAMES = {
    "M": ("Hữu", "Đức", "Minh", "Quang", "Công", "Thành", "Xuân", "Ngọc", "Anh", "Gia", "Bảo", "Tuấn", "Trung",
          "Mạnh", "Duy", "Hoàng", "Đình", "Tiến", "Trọng", "Việt"),
    "F": ("Ngọc", "Thu", "Thanh", "Thùy", "Minh", "Phương", "Hồng", "Kim", "Bảo", "Khánh", "Mai", "Diệu", "Hải",
          "Lan", "Bích", "Hoài", "Quỳnh", "Tú"),
}  # fmt: skip
GIVEN_NAMES = {
    "M": ("An", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Hải", "Hiếu", "Hoàng", "Hùng", "Huy", "Khánh", "Khoa",
          "Kiên", "Long", "Mạnh", "Minh", "Nam", "Nghĩa", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài",
          "Thắng", "Thành", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Hưng", "Lâm", "Hào", "Toàn", "Thịnh",
          "Bảo", "Đăng", "Khôi", "Phát", "Lộc", "Chiến", "Tiến", "Thái", "Trọng", "Hiển", "Tú", "Duy", "Hòa"),
    "F": ("An", "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hồng", "Huệ", "Hương",
          "Huyền", "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Oanh", "Phương",
          "Quỳnh", "Tâm", "Thảo", "Thủy", "Trang", "Trinh", "Tuyết", "Uyên", "Vân", "Yến", "Nhi", "Thư", "Vy",
          "Diệp", "Ánh", "Châu", "Hậu", "Lý", "Xuân", "Thoa", "Hoài", "Duyên", "Nhàn", "Hạnh"),
}  # fmt: skip

ETHNICITIES = {
    22: (("Kinh", 880), ("Dao", 50), ("Tày", 35), ("Sán Dìu", 18), ("Sán Chay", 10), ("Hoa", 5), ("Nùng", 2)),
    None: (("Kinh", 860), ("Tày", 20), ("Thái", 20), ("Mường", 20), ("Khmer", 15), ("Nùng", 15), ("H'Mông", 15),
           ("Hoa", 10), ("Dao", 10), ("Gia Rai", 5), ("Ê Đê", 5)),
}  # fmt: skip
WORKING_OCCUPATIONS = {
    "M": (("Công nhân", 150), ("Nông dân", 140), ("Lao động tự do", 120), ("Buôn bán", 60), ("Công nhân mỏ", 100),
          ("Lái xe", 50), ("Ngư dân", 40), ("Nhân viên văn phòng", 60), ("Kỹ sư", 30), ("Cán bộ, công chức", 40),
          ("Giáo viên", 15), ("Bộ đội", 15), ("Công an", 15), ("Nhân viên y tế", 10), ("Kinh doanh", 40),
          ("Hướng dẫn viên du lịch", 10)),
    "F": (("Công nhân", 150), ("Nông dân", 150), ("Lao động tự do", 90), ("Buôn bán", 120), ("Nội trợ", 90),
          ("Nhân viên văn phòng", 80), ("Giáo viên", 50), ("Cán bộ, công chức", 40), ("Nhân viên y tế", 30),
          ("Kinh doanh", 50), ("Công nhân mỏ", 15), ("Hướng dẫn viên du lịch", 15)),
}  # fmt: skip
# Occupations whose insurance the employer pays (DN) or the state pays as civil servants (HC).
EMPLOYEE_OCCUPATIONS = frozenset(
    ("Công nhân", "Công nhân mỏ", "Lái xe", "Nhân viên văn phòng", "Kỹ sư", "Hướng dẫn viên du lịch")
)
CIVIL_SERVANT_OCCUPATIONS = frozenset(("Cán bộ, công chức", "Giáo viên", "Bộ đội", "Công an", "Nhân viên y tế"))
# The first digits of an old CMND by province of issue; elsewhere the province code stands in.
CMND_PREFIXES = {1: "01", 22: "10", 31: "03", 48: "20", 79: "02"}
CCCD_ISSUER = "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
# Mobile prefixes by network share (Viettel, VinaPhone, MobiFone and the small networks).
PHONE_PREFIXES = (
    (("096", "097", "098", "086", "032", "033", "034", "035", "036", "037", "038", "039"), 50),
    (("091", "094", "088", "081", "082", "083", "084", "085"), 25),
    (("090", "093", "089", "070", "076", "077", "078", "079"), 20),
    (("092", "056", "058", "099", "059"), 5),
)

# name, ICD-10, minimum age, yearly risk growth after that age, gender or None.
CHRONIC_CONDITIONS = (
    ("Tăng huyết áp", "I10", 35, 0.009, None),
    ("Đái tháo đường type 2", "E11", 35, 0.003, None),
    ("Bệnh tim thiếu máu cục bộ mạn", "I25", 50, 0.002, None),
    ("Bệnh phổi tắc nghẽn mạn tính", "J44", 45, 0.002, "M"),
    ("Bệnh bụi phổi than", "J60", 40, 0.001, "M"),
    ("Viêm gan B mạn", "B18.1", 18, 0.0008, None),
    ("Bệnh thận mạn", "N18", 50, 0.001, None),
    ("Gút", "M10", 40, 0.001, "M"),
    ("Thoái hóa khớp gối", "M17", 50, 0.003, "F"),
)
HISTORY_CONDITIONS = (
    ("Đã mổ ruột thừa", "K35.8"),
    ("Lao phổi đã điều trị khỏi", "A15.0"),
    ("Gãy xương cẳng tay, đã liền", "S52.5"),
)
ASTHMA = ("Hen phế quản", "J45")
ALLERGENS = (
    ("Penicillin", "Nổi mề đay"), ("Amoxicillin", "Ngứa, phát ban"), ("Hải sản", "Nổi mề đay"),
    ("Tôm", "Ngứa, sưng môi"), ("Aspirin", "Khó thở"), ("Phấn hoa", "Hắt hơi, chảy nước mũi"),
    ("Sữa bò", "Đau bụng, tiêu chảy"), ("Đậu phộng", "Sưng môi, khó thở"), ("Cefalexin", "Phát ban"),
)  # fmt: skip
# ICD-10, diagnosis, weight for children (< 16), adults, older people (>= 60).
DIAGNOSES = (
    ("J06.9", "Nhiễm trùng đường hô hấp trên cấp", 30, 15, 8),
    ("J20.9", "Viêm phế quản cấp", 10, 6, 8),
    ("J18.9", "Viêm phổi", 6, 2, 6),
    ("A09", "Tiêu chảy, viêm dạ dày ruột", 10, 4, 3),
    ("B08.4", "Bệnh tay chân miệng", 8, 0, 0),
    ("A90", "Sốt xuất huyết Dengue", 2, 3, 1),
    ("U07.1", "COVID-19", 2, 4, 4),
    ("H10.9", "Viêm kết mạc", 4, 3, 2),
    ("K29.7", "Viêm dạ dày", 1, 8, 6),
    ("M54.5", "Đau thắt lưng", 0, 7, 8),
    ("I10", "Tăng huyết áp vô căn", 0, 5, 20),
    ("E11.9", "Đái tháo đường type 2", 0, 3, 10),
    ("S93.4", "Bong gân cổ chân", 3, 3, 1),
    ("Z00.0", "Khám sức khỏe tổng quát", 4, 12, 8),
    ("L30.9", "Viêm da", 3, 3, 2),
)
VISIT_SUMMARIES = (
    None, None, "Khám, kê đơn điều trị ngoại trú 5 ngày", "Khám, kê đơn điều trị ngoại trú 7 ngày",
    "Điều trị nội trú 4 ngày, ra viện ổn định", "Tư vấn, hẹn tái khám sau 1 tháng", "Xét nghiệm máu, siêu âm",
)  # fmt: skip


class DemoDataError(Exception):
    """Demo data cannot be loaded here; the message says why."""


@dataclass
class DemoAccount:
    username: str
    role: str
    unit_code: str
    unit_name: str
    password: str


@dataclass
class DemoResult:
    """What generate() wrote, how fast, and the accounts to sign in with."""

    province_name: str
    seed: int
    units: int = 0
    accounts: list = field(default_factory=list)
    households: int = 0
    citizens: int = 0
    relations: int = 0
    records: dict = field(default_factory=dict)
    citizens_seconds: float = 0.0
    records_seconds: float = 0.0
    sign_in_url: str = ""

    def summary_lines(self):
        """Human-readable lines for the command line, one-time passwords included."""
        records = ", ".join(f"{n:,} {name}" for name, n in self.records.items())
        lines = [
            f"demo data for {self.province_name} (seed {self.seed}): {self.units} health units, "
            f"{len(self.accounts)} staff accounts, {self.citizens:,} citizens in {self.households:,} households, "
            f"{self.relations:,} family relations",
            f"records: {records or 'none'}",
        ]
        if self.citizens:
            lines.append(
                f"citizens written in {self.citizens_seconds:.1f} s ({self.citizens / max(self.citizens_seconds, 1e-9):,.0f}/s); "
                f"records in {self.records_seconds:.1f} s ({sum(self.records.values()) / max(self.records_seconds, 1e-9):,.0f}/s)"
            )
        lines.append(
            f"Sign in at {self.sign_in_url} with one of these accounts. Each password works once: "
            "the first sign-in asks for a new one."
        )
        width = max((len(a.username) for a in self.accounts), default=8)
        for account in self.accounts:
            lines.append(
                f"  {account.username:<{width}}  {account.password}  {account.role:<17}  {account.unit_code:<14}  {account.unit_name}"
            )
        return lines


class _Picker:
    """Weighted choice driven by an explicit random source."""

    def __init__(self, pairs):
        self.values = [value for value, _weight in pairs]
        self.cumulative = []
        total = 0
        for _value, weight in pairs:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def __call__(self, rng):
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.total)]


def _bare_name(name, division_type):
    """'Phường An Sinh' -> 'An Sinh'; 'Thành phố Hà Nội' -> 'Hà Nội'."""
    prefix = (division_type or "").split(" trung ương")[0]
    if prefix and name.lower().startswith(prefix.lower() + " "):
        return name[len(prefix) + 1 :]
    return name


def _province_label(name, division_type):
    """'tỉnh Quảng Ninh', 'thành phố Hà Nội': how running text names the province."""
    bare = _bare_name(name, division_type)
    return f"tỉnh {bare}" if division_type == "tỉnh" else f"thành phố {bare}"


def _ward_rows(province_code):
    """(code, name, division_type) of the province's wards, by code."""
    query = Ward.select(Ward.code, Ward.name, Ward.division_type).where(Ward.province == province_code)
    return sorted(query.tuples())


def _fold_code(code):
    """fold() of an identifier: only legacy health codes carry a separator."""
    return code.lower() if code.isalnum() else fold(code)


class _PeopleMaker:
    """Builds households, citizens and family relations from one random source."""

    def __init__(self, province, wards, seed, taken_health_codes=()):
        self.rng = random.Random(seed)
        province_code, province_name, division_type = province
        self.province_code = province_code
        self.wards = list(wards)
        if not self.wards:
            raise DemoDataError(f"province {province_code} has no communes or wards")
        # Communes differ in size: a few towns hold most people.
        self.ward_weights = _Picker([(i, 1 + 9 * self.rng.random() ** 3) for i in range(len(self.wards))])
        self.ward_sequence = [0] * len(self.wards)
        self.folded_wards = [fold(name) for _code, name, _type in self.wards]
        self.surname = _Picker(SURNAMES)
        self.ethnicity = _Picker(ETHNICITIES.get(province_code, ETHNICITIES[None]))
        occupations = WORKING_OCCUPATIONS
        if province_code != 22:
            # Coal mining is Quảng Ninh's trade; elsewhere those people work in factories.
            occupations = {
                g: tuple((o, w) for o, w in pairs if o != "Công nhân mỏ") for g, pairs in occupations.items()
            }
        self.occupation = {g: _Picker(pairs) for g, pairs in occupations.items()}
        self.phone_group = _Picker(PHONE_PREFIXES)
        cccd_code = f"{province_code:03d}"
        self.own_birth_code = cccd_code if cccd_code in CCCD_PROVINCE_CODES else "001"
        self.other_birth_codes = sorted(CCCD_PROVINCE_CODES)
        self.cmnd_prefix = CMND_PREFIXES.get(province_code, f"{province_code % 100:02d}")
        # Codes from the earlier provincial system began with the province's initials (QN- for Quảng Ninh).
        self.legacy_prefix = "".join(w[0] for w in fold(_bare_name(province_name, division_type)).split()).upper()
        self.cmnd_issuer = f"Công an {_province_label(province_name, division_type)}"
        self.health_codes = set(taken_health_codes)
        self.national_ids = set()
        self.social_insurance_ids = set()
        self.phones = set()
        self.folded = {}

    # Households
    def household(self, household_id, first_citizen_id):
        """One household: its row, its members' rows and their family relations."""
        rng = self.rng
        ward_index = self.ward_weights(rng)
        ward_code, ward_name, division_type = self.wards[ward_index]
        self.ward_sequence[ward_index] += 1
        book_number = f"{ward_code:05d}{self.ward_sequence[ward_index]:06d}"
        # The folded address is put together from folded parts: fold() per row is too slow for a million.
        if division_type == "phường":
            number, group, quarter = 1 + int(rng.random() * 250), 1 + int(rng.random() * 30), 1 + int(rng.random() * 12)
            address = f"Số {number}, tổ {group}, khu {quarter}, {ward_name}"
            folded_address = f"so {number} to {group} khu {quarter} {self.folded_wards[ward_index]}"
        else:
            number, village = 1 + int(rng.random() * 150), 1 + int(rng.random() * 15)
            address = f"Số nhà {number}, thôn {village}, {ward_name}"
            folded_address = f"so nha {number} thon {village} {self.folded_wards[ward_index]}"
        ethnicity = self.ethnicity(rng)
        members = self._members()
        citizens = []
        relations = []
        for index, member in enumerate(members):
            gender, age, relation, father, mother, spouse, surname = member
            citizen_id = first_citizen_id + index
            citizens.append(
                self._citizen(
                    citizen_id,
                    gender,
                    age,
                    relation,
                    surname,
                    ethnicity,
                    ward_index,
                    household_id,
                    address,
                    folded_address,
                    citizens,
                )
            )
            if father is not None:
                relations.append((citizen_id, first_citizen_id + father, "father"))
            if mother is not None:
                relations.append((citizen_id, first_citizen_id + mother, "mother"))
            if spouse is not None and spouse > index:
                relations.append((citizen_id, first_citizen_id + spouse, "spouse"))
            if relation == "parent":
                # Stored from the older side: the household head is this parent's child.
                relations.append((citizen_id, first_citizen_id + _head_index(members), "child"))
        return (household_id, book_number, ward_code, address), citizens, relations

    def _members(self):
        """[gender, age, relation to head, father, mother, spouse, surname] for each member."""
        rng = self.rng
        roll = rng.random()
        size = (
            1
            if roll < 0.12
            else 2
            if roll < 0.32
            else 3
            if roll < 0.54
            else 4
            if roll < 0.80
            else 5
            if roll < 0.93
            else 6
        )
        kind = rng.random()
        if size == 1:
            elder = rng.random() < 0.55
            age = 62 + 30 * rng.random() if elder else 20 + 20 * rng.random()
            gender = ("F" if rng.random() < 0.65 else "M") if elder else ("M" if rng.random() < 0.55 else "F")
            return [[gender, age, "head", None, None, None, self.surname(rng)]]
        if size == 2:
            if kind < 0.65:
                return self._family(children=0, elders=0, young_couple=rng.random() < 0.25)
            return self._single_parent(children=1)
        if size == 3:
            if kind < 0.75:
                return self._family(children=1, elders=0)
            if kind < 0.85:
                return self._family(children=0, elders=1)
            return self._single_parent(children=2)
        if size == 4:
            if kind < 0.70:
                return self._family(children=2, elders=0)
            if kind < 0.85:
                return self._family(children=1, elders=1)
            return self._three_generations(widowed=True, grandchildren=1)
        if size == 5:
            if kind < 0.30:
                return self._family(children=3, elders=0)
            if kind < 0.60:
                return self._family(children=2, elders=1)
            return self._three_generations(widowed=False, grandchildren=1)
        if kind < 0.35:
            return self._family(children=2, elders=2)
        if kind < 0.55:
            return self._family(children=3, elders=1)
        return self._three_generations(widowed=False, grandchildren=2)

    def _children_ages(self, mother_age, count):
        """Ages of count children of a mother, each born when she was 19 to 42."""
        rng = self.rng
        oldest_at = min(42.0, mother_age)
        return sorted((mother_age - (19 + (oldest_at - 19) * rng.random()) for _ in range(count)), reverse=True)

    def _family(self, children, elders, young_couple=False):
        """A couple, their children and the head's parents."""
        rng = self.rng
        if young_couple:
            husband_age = 22 + 8 * rng.random()
        elif elders:
            husband_age = 27 + 21 * rng.random()
        elif children:
            husband_age = 26 + 34 * rng.random()
        else:
            husband_age = 55 + 33 * rng.random()
        wife_age = max(20.0, husband_age - 5 * rng.random() + 1)
        husband_surname = self.surname(rng)
        wife_head = rng.random() < 0.15
        members = [
            ["M", husband_age, "spouse" if wife_head else "head", None, None, 1, husband_surname],
            ["F", wife_age, "head" if wife_head else "spouse", None, None, 0, self.surname(rng)],
        ]
        for age in self._children_ages(wife_age, children):
            gender = "M" if rng.random() < 0.52 else "F"
            members.append([gender, age, "child", 0, 1, None, husband_surname])
        head = members[1 if wife_head else 0]
        head_age = head[1]
        if elders:
            father_age = min(97.0, head_age + 24 + 12 * rng.random())
            mother_age = max(head_age + 19, father_age - 6 * rng.random())
            father_index = len(members)
            if elders == 2:
                members.append(["M", father_age, "parent", None, None, father_index + 1, head[6]])
                members.append(["F", mother_age, "parent", None, None, father_index, self.surname(rng)])
                head[3], head[4] = father_index, father_index + 1
            elif rng.random() < 0.7:
                members.append(["F", mother_age, "parent", None, None, None, self.surname(rng)])
                head[4] = father_index
            else:
                members.append(["M", father_age, "parent", None, None, None, head[6]])
                head[3] = father_index
        return members

    def _single_parent(self, children):
        """A parent, most often a mother, living with their children."""
        rng = self.rng
        gender = "F" if rng.random() < 0.7 else "M"
        age = 30 + 45 * rng.random()
        surname = self.surname(rng)
        members = [[gender, age, "head", None, None, None, surname]]
        for child_age in self._children_ages(age, children):
            child_surname = surname if gender == "M" else self.surname(rng)
            father, mother = (0, None) if gender == "M" else (None, 0)
            members.append(
                ["M" if rng.random() < 0.52 else "F", child_age, "child", father, mother, None, child_surname]
            )
        return members

    def _three_generations(self, widowed, grandchildren):
        """An older head, a married son and his wife, and their children."""
        rng = self.rng
        head_age = 55 + 27 * rng.random()
        surname = self.surname(rng)
        members = [["F" if widowed else "M", head_age, "head", None, None, None, surname]]
        if not widowed:
            members[0][5] = 1
            members.append(["F", max(head_age - 6 * rng.random(), 50.0), "spouse", None, None, 0, self.surname(rng)])
        son_age = head_age - 23 - 10 * rng.random()
        son = len(members)
        father, mother = (None, 0) if widowed else (0, 1)
        members.append(["M", son_age, "child", father, mother, son + 1, surname if not widowed else self.surname(rng)])
        daughter_in_law_age = max(20.0, son_age - 4 * rng.random())
        members.append(["F", daughter_in_law_age, "other", None, None, son, self.surname(rng)])
        for age in self._children_ages(daughter_in_law_age, grandchildren):
            members.append(
                ["M" if rng.random() < 0.52 else "F", age, "grandchild", son, son + 1, None, members[son][6]]
            )
        return members

    # Citizens
    def _citizen(
        self,
        citizen_id,
        gender,
        age,
        relation,
        surname,
        ethnicity,
        ward_index,
        household_id,
        address,
        folded_address,
        built,
    ):
        """One citizen row, valid by construction (Citizen.clean() leaves it unchanged)."""
        rng = self.rng
        birth_day = REFERENCE_DAY - int(age * YEAR)
        born = datetime.date.fromordinal(birth_day)

        if born.year < 1970:
            traditional = 0.8
        elif born.year < 1990:
            traditional = 0.55
        elif born.year < 2005:
            traditional = 0.35
        else:
            traditional = 0.2
        middles = MIDDLE_NAMES[gender]
        givens = GIVEN_NAMES[gender]
        given = givens[int(rng.random() * len(givens))]
        middle = TRADITIONAL_MIDDLE[gender] if rng.random() < traditional else middles[int(rng.random() * len(middles))]
        if middle == given:
            middle = TRADITIONAL_MIDDLE[gender]
        full_name = f"{surname} {middle} {given}"
        folded_name = self.folded.get(full_name)
        if folded_name is None:
            folded_name = self.folded[full_name] = fold(full_name)

        occupation = self._occupation(gender, age)
        national_id, issued_on, issued_by, old_national_id = self._identity(gender, age, born)
        insurance = self._insurance(age, occupation)
        phone = self._phone(age, built)
        email = None
        if 18 <= age < 50 and rng.random() < 0.15:
            domain = "example.vn" if rng.random() < 0.7 else "example.org"
            email = f"{folded_name.replace(' ', '')}{born.year % 100:02d}@{domain}"

        if rng.random() < 0.02:
            health_code = f"{self.legacy_prefix}-{int(rng.random() * 10**7):07d}"
        else:
            health_code = new_health_code(self.province_code, rng)
        while health_code in self.health_codes:
            health_code = new_health_code(self.province_code, rng)
        self.health_codes.add(health_code)

        temporary_address = None
        folded_temporary = None
        if 18 <= age < 40 and rng.random() < 0.08:
            other = int(rng.random() * len(self.wards))
            number, lane = 1 + int(rng.random() * 120), 1 + int(rng.random() * 60)
            temporary_address = f"Số {number}, ngõ {lane}, {self.wards[other][1]}"
            folded_temporary = f"so {number} ngo {lane} {self.folded_wards[other]}"

        # The same words, in the same order, as Citizen.build_search_text.
        words = [folded_name, folded_address, folded_temporary, _fold_code(health_code), national_id, old_national_id]
        words.append(insurance.lower() if insurance else None)
        if phone:
            words.append(phone)
            words.append(phone[1:])
        search_text = " ".join(filter(None, words))
        return (
            citizen_id, full_name, born.isoformat(), gender, occupation,
            ethnicity if rng.random() > 0.02 else None, phone, email, national_id, issued_on, issued_by,
            old_national_id, insurance, health_code, self.wards[ward_index][0], address, temporary_address,
            household_id, relation, search_text,
        )  # fmt: skip

    def _occupation(self, gender, age):
        rng = self.rng
        if age < 6:
            return "Trẻ em"
        if age < 18:
            return "Học sinh"
        if rng.random() < 0.05:
            return None  # not asked, or not answered: the completeness report shows it
        if age < 23 and rng.random() < 0.45:
            return "Sinh viên"
        if age >= 60:
            roll = rng.random()
            return (
                "Hưu trí"
                if roll < 0.45
                else "Nông dân"
                if roll < 0.75
                else "Nội trợ"
                if gender == "F"
                else "Lao động tự do"
            )
        return self.occupation[gender](rng)

    def _identity(self, gender, age, born):
        """(national_id, issued_on, issued_by, old_national_id) for a person of this age."""
        rng = self.rng
        if age < 14:
            return None, None, None, None
        roll = rng.random()
        if roll < 0.04:
            return None, None, None, None  # never collected
        if roll < 0.07 and born.year < 1965:
            number = self._unique(self.national_ids, lambda: f"{self.cmnd_prefix}{int(rng.random() * 10**7):07d}")
            issued_year = max(born.year + 15, 1995) + int(rng.random() * 15)
            issued = datetime.date(min(issued_year, 2015), 1 + int(rng.random() * 12), 1 + int(rng.random() * 28))
            return number, issued.isoformat(), self.cmnd_issuer, None
        birth_code = (
            self.own_birth_code
            if rng.random() < 0.88
            else self.other_birth_codes[int(rng.random() * len(self.other_birth_codes))]
        )
        century_digit = (0 if born.year < 2000 else 2) + (1 if gender == "F" else 0)
        prefix = f"{birth_code}{century_digit}{born.year % 100:02d}"
        number = self._unique(self.national_ids, lambda: f"{prefix}{int(rng.random() * 10**6):06d}")
        old_number = None
        if born.year < 1995 and rng.random() < 0.4:
            old_number = self._unique(self.national_ids, lambda: f"{self.cmnd_prefix}{int(rng.random() * 10**7):07d}")
        issued_on = None
        if rng.random() < 0.95:
            fourteenth = born.toordinal() + int(14 * YEAR) + 1
            roll = rng.random()
            start = datetime.date(2021, 1, 1) if roll < 0.6 else datetime.date(2016, 1, 1)
            first = max(fourteenth, start.toordinal())
            issued_on = datetime.date.fromordinal(first + int(rng.random() * max(REFERENCE_DAY - first, 1))).isoformat()
        return number, issued_on, CCCD_ISSUER if issued_on else None, old_number

    def _insurance(self, age, occupation):
        rng = self.rng
        if age < 6:
            group = "TE1"
        elif age < 18:
            group = "HS4" if rng.random() < 0.95 else None
        elif rng.random() < 0.18:
            group = None
        elif occupation == "Sinh viên":
            group = "SV4"
        elif age >= 80:
            group = "BT2"
        elif occupation == "Hưu trí":
            group = "HT3"
        elif occupation in CIVIL_SERVANT_OCCUPATIONS:
            group = "HC4"
        elif occupation in EMPLOYEE_OCCUPATIONS:
            group = "DN4"
        else:
            group = "CN2" if rng.random() < 0.05 else "GD4"
        if group is None:
            return None
        province = f"{self.province_code:02d}"
        social_id = self._unique(self.social_insurance_ids, lambda: f"{province}{int(rng.random() * 10**8):08d}")
        return f"{group}{province}{social_id}"

    def _phone(self, age, built):
        rng = self.rng
        if age < 15:
            # Children are reached on the phone of one of the first adults listed, when they gave one.
            if rng.random() < 0.12:
                for row in built[:2]:
                    if row[6]:
                        return row[6]
            return None
        if rng.random() < 0.08:
            return None
        prefixes = self.phone_group(rng)
        prefix = prefixes[int(rng.random() * len(prefixes))]
        return self._unique(self.phones, lambda: f"{prefix}{int(rng.random() * 10**7):07d}")

    @staticmethod
    def _unique(seen, draw):
        value = draw()
        while value in seen:
            value = draw()
        seen.add(value)
        return value


def _head_index(members):
    return next(i for i, member in enumerate(members) if member[2] == "head")


def iter_people(province, wards, n, seed, first_household_id=1, first_citizen_id=1, taken_health_codes=()):
    """Yield (households, citizens, relations) row batches for n people; the same arguments give the same rows."""
    maker = _PeopleMaker(province, wards, seed, taken_health_codes)
    household_id = first_household_id
    citizen_id = first_citizen_id
    last_id = first_citizen_id + n
    households, citizens, relations = [], [], []
    while citizen_id < last_id:
        household, members, links = maker.household(household_id, citizen_id)
        if citizen_id + len(members) > last_id:
            # The last household is cut to size; drop links to members who were not written.
            members = members[: last_id - citizen_id]
            links = [link for link in links if link[1] < last_id and link[0] < last_id]
        households.append(household)
        citizens.extend(members)
        relations.extend(links)
        household_id += 1
        citizen_id += len(members)
        if len(citizens) >= PEOPLE_PER_BATCH or citizen_id >= last_id:
            yield households, citizens, relations
            households, citizens, relations = [], [], []


def build_people(province, wards, n, seed, first_household_id=1, first_citizen_id=1):
    """(households, citizens, relations) rows for n people of a province, as iter_people writes them.

    province is (code, name, division_type) and wards a list of (code, name, division_type), by code.
    """
    households, citizens, relations = [], [], []
    for batch in iter_people(province, wards, n, seed, first_household_id, first_citizen_id):
        households.extend(batch[0])
        citizens.extend(batch[1])
        relations.extend(batch[2])
    return households, citizens, relations


class _Cohort:
    """Compact facts about the citizens written, for the records pass: a million tuples would not fit well."""

    def __init__(self, wards, first_citizen_id):
        self.first_citizen_id = first_citizen_id
        self.ward_index = {code: index for index, (code, _name, _type) in enumerate(wards)}
        self.births = array("i")
        self.genders = bytearray()
        self.ward_indexes = array("H")

    def facts(self, citizens):
        """(births, genders, ward indexes) of these citizen rows, cheap to send between processes."""
        ward_index = self.ward_index
        births = array("i", [datetime.date.fromisoformat(row[2]).toordinal() for row in citizens])
        genders = bytes(77 if row[3] == "M" else 70 for row in citizens)
        return births, genders, array("H", [ward_index[row[14]] for row in citizens])

    def add(self, facts):
        births, genders, ward_indexes = facts
        self.births.extend(births)
        self.genders.extend(genders)
        self.ward_indexes.extend(ward_indexes)

    def __len__(self):
        return len(self.births)


# Records
# EPI doses: (vaccine code, dose number, earliest and latest age in days).
CHILDHOOD_SCHEDULE = (
    ("BCG", 1, 0, 30),
    ("VGB", 1, 0, 1),
    ("DPT-VGB-HIB", 1, 60, 75),
    ("DPT-VGB-HIB", 2, 90, 110),
    ("DPT-VGB-HIB", 3, 120, 140),
    ("OPV", 1, 60, 75),
    ("OPV", 2, 90, 110),
    ("OPV", 3, 120, 140),
    ("MR", 1, 270, 300),
    ("MR", 2, 540, 570),
    ("VNNB", 1, 365, 395),
    ("VNNB", 2, 380, 410),
    ("VNNB", 3, 730, 760),
)
LOT_PREFIXES = {
    "BCG": "QT",
    "VGB": "GB",
    "DPT-VGB-HIB": "QV",
    "OPV": "PV",
    "MR": "MR",
    "VNNB": "JE",
    "COVID-19": "CV",
    "CUM": "FL",
}
BIRTH_DIAGNOSIS = ("O80", "Đẻ thường một thai")
SEVERE_REACTION = "Sốc phản vệ"


def _day(year, month, day):
    return datetime.date(year, month, day).toordinal()


COVID_ADULT_START = _day(2021, 7, 15)
COVID_TEEN_START = _day(2021, 11, 1)
COVID_BOOSTER_START = _day(2022, 1, 15)
COVID_SECOND_BOOSTER_START = _day(2022, 7, 1)
RECENT_VISITS_START = REFERENCE_DAY - int(3 * YEAR)


@dataclass
class DemoFacilities:
    """Unit ids the records point at."""

    station_by_ward: list
    centre_by_ward: list
    general_hospital: int
    maternity_hospital: int
    sites: list
    vaccines: dict


class _RecordsMaker:
    """Builds conditions, allergies, encounters and vaccinations for citizens already built."""

    def __init__(self, seed, people, facilities, province_code):
        self.rng = random.Random(f"{seed}:records")
        self.people = people
        self.first_citizen_id = people.first_citizen_id
        self.facilities = facilities
        self.coal_province = province_code == 22
        self.visit_number = 0
        self.diagnoses = {
            "child": _Picker([((c, d), w) for c, d, w, _a, _e in DIAGNOSES if w]),
            "adult": _Picker([((c, d), w) for c, d, _c, w, _e in DIAGNOSES if w]),
            "elder": _Picker([((c, d), w) for c, d, _c, _a, w in DIAGNOSES if w]),
        }

    def batches(self, size=PEOPLE_PER_BATCH):
        """Yield {table: rows} for each slice of citizens."""
        total = len(self.people)
        for start in range(0, total, size):
            rows = {"condition": [], "allergy": [], "encounter": [], "vaccination": []}
            for index in range(start, min(start + size, total)):
                self._citizen(index, rows)
            yield rows

    def _citizen(self, index, rows):
        rng = self.rng
        citizen_id = self.first_citizen_id + index
        birth = self.people.births[index]
        gender = "M" if self.people.genders[index] == 77 else "F"
        ward_index = self.people.ward_indexes[index]
        age = (REFERENCE_DAY - birth) / YEAR
        if age >= 3:
            self._conditions(citizen_id, birth, age, gender, rows["condition"])
            if rng.random() < 0.03:
                substance, reaction = ALLERGENS[int(rng.random() * len(ALLERGENS))]
                roll = rng.random()
                severity = "mild" if roll < 0.6 else "moderate" if roll < 0.9 else "severe"
                rows["allergy"].append(
                    (citizen_id, substance, SEVERE_REACTION if severity == "severe" else reaction, severity)
                )
        self._encounters(citizen_id, birth, age, gender, ward_index, rows["encounter"])
        self._vaccinations(citizen_id, birth, age, ward_index, rows["vaccination"])

    def _conditions(self, citizen_id, birth, age, gender, out):
        rng = self.rng
        for name, code, min_age, growth, only in CHRONIC_CONDITIONS:
            if age < min_age or (only and only != gender) or (code == "J60" and not self.coal_province):
                continue
            if rng.random() < min(0.45, growth * (age - min_age)):
                first = max(birth + int(min_age * YEAR), REFERENCE_DAY - int(20 * YEAR))
                since = datetime.date.fromordinal(first + int(rng.random() * (REFERENCE_DAY - first)))
                out.append((citizen_id, "chronic", name, code, since.isoformat(), None))
        if rng.random() < 0.02:
            since = datetime.date.fromordinal(
                birth + int(3 * YEAR) + int(rng.random() * (REFERENCE_DAY - birth - 3 * YEAR))
            )
            out.append((citizen_id, "chronic", ASTHMA[0], ASTHMA[1], since.isoformat(), None))
        if age >= 10 and rng.random() < 0.025:
            name, code = HISTORY_CONDITIONS[int(rng.random() * len(HISTORY_CONDITIONS))]
            out.append((citizen_id, "history", name, code, None, None))

    def _encounters(self, citizen_id, birth, age, gender, ward_index, out):
        rng = self.rng
        rate = 0.9 if age < 6 else 0.35 if age < 16 else 0.3 if age < 40 else 0.5 if age < 60 else 1.0
        # A Poisson count, drawn by multiplying uniforms (Knuth): rates are small.
        threshold = 2.718281828459045**-rate
        count = 0
        product = rng.random()
        while product > threshold:
            count += 1
            product *= rng.random()
        first = max(birth, RECENT_VISITS_START)
        group = "child" if age < 16 else "adult" if age < 60 else "elder"
        facilities = self.facilities
        for _ in range(count):
            day = first + int(rng.random() * (REFERENCE_DAY - first + 1))
            roll = rng.random()
            if gender == "F" and 20 <= age < 42 and roll < 0.05:
                facility, (code, diagnosis) = facilities.maternity_hospital, BIRTH_DIAGNOSIS
            else:
                code, diagnosis = self.diagnoses[group](rng)
                if roll < 0.35:
                    facility = (
                        facilities.maternity_hospital
                        if group == "child" and roll < 0.15
                        else facilities.general_hospital
                    )
                elif roll < 0.9:
                    facility = facilities.station_by_ward[ward_index]
                else:
                    facility = facilities.centre_by_ward[ward_index]
            self.visit_number += 1
            summary = VISIT_SUMMARIES[int(rng.random() * len(VISIT_SUMMARIES))]
            date = datetime.date.fromordinal(day).isoformat()
            out.append((citizen_id, facility, None, f"KB{self.visit_number:09d}", date, code, diagnosis, summary))

    def _vaccinations(self, citizen_id, birth, age, ward_index, out):
        rng = self.rng
        vaccines = self.facilities.vaccines
        station = self.facilities.station_by_ward[ward_index]
        sites = self.facilities.sites
        if age < 6 and rng.random() < 0.92:
            given = {}
            for code, dose, earliest, latest in CHILDHOOD_SCHEDULE:
                if code not in vaccines or (dose > 1 and given.get(code) != dose - 1) or rng.random() < 0.03:
                    continue
                day = max(
                    birth + earliest + int(rng.random() * (latest - earliest + 1)), given.get((code, "day"), 0) + 7
                )
                if day > REFERENCE_DAY:
                    continue
                given[code], given[(code, "day")] = dose, day
                site = station if rng.random() < 0.85 else sites[int(rng.random() * len(sites))]
                out.append(_dose(citizen_id, vaccines[code], dose, day, site, code))
        if age >= 14 and "COVID-19" in vaccines and rng.random() < (0.5 if age >= 18 else 0.4):
            start = COVID_ADULT_START if age >= 18 else COVID_TEEN_START
            days = [start + int(rng.random() * 150)]
            days.append(days[0] + 28 + int(rng.random() * 56))
            if age >= 18 and rng.random() < 0.6:
                days.append(max(COVID_BOOSTER_START + int(rng.random() * 160), days[1] + 90))
                if rng.random() < 0.4:
                    days.append(max(COVID_SECOND_BOOSTER_START + int(rng.random() * 180), days[2] + 120))
            roll = rng.random()
            site = (
                sites[int(rng.random() * len(sites))]
                if roll < 0.5
                else station
                if roll < 0.85
                else self.facilities.general_hospital
            )
            for dose, day in enumerate(days, start=1):
                out.append(_dose(citizen_id, vaccines["COVID-19"], dose, day, site, "COVID-19"))
        if age >= 60 and "CUM" in vaccines and rng.random() < 0.12:
            seasons = 1 + int(rng.random() * 3)
            for dose in range(1, seasons + 1):
                day = _day(REFERENCE_DATE.year - seasons + dose, 10, 1) + int(rng.random() * 60)
                if day <= REFERENCE_DAY:
                    out.append(_dose(citizen_id, vaccines["CUM"], dose, day, sites[0], "CUM"))
        if 18 <= age < 40 and "VGB" in vaccines and rng.random() < 0.03:
            first = REFERENCE_DAY - int(rng.random() * 5 * YEAR)
            for dose, offset in ((1, 0), (2, 30), (3, 180)):
                if first + offset <= REFERENCE_DAY:
                    out.append(_dose(citizen_id, vaccines["VGB"], dose, first + offset, station, "VGB"))


def _dose(citizen_id, vaccine_id, dose, day, site, code):
    date = datetime.date.fromordinal(day)
    lot = f"{LOT_PREFIXES[code]}{date.year % 100:02d}{date.month:02d}-{1 + date.day // 10}"
    return (citizen_id, vaccine_id, dose, date.isoformat(), site, lot)


# Units and accounts
@dataclass(frozen=True)
class UnitPlan:
    """A health unit to create, and the one account that works there."""

    code: str
    name: str
    kind: str
    parent_code: str
    email: str
    ward_codes: tuple
    username: str
    role: str


def plan_units(province_code, province_name, division_type, wards):
    """The province's health units, top-down, each with its account (a pure function)."""
    p = f"{province_code:02d}"
    bare = _bare_name(province_name, division_type)
    label = _province_label(province_name, division_type)
    every_ward = tuple(code for code, _name, _type in wards)
    department, cdc = f"SYT-{p}", f"CDC-{p}"
    plans = [
        UnitPlan(department, f"Sở Y tế {bare}", UnitKind.DEPARTMENT, None, f"syt{p}@example.vn", every_ward,
                 f"syt{p}.lanhdao", Role.DEPARTMENT_LEADER),
        UnitPlan(cdc, f"Trung tâm Kiểm soát bệnh tật {label}", UnitKind.CDC, department, f"cdc{p}@example.vn",
                 every_ward, f"cdc{p}.canbo", Role.CDC_STAFF),
    ]  # fmt: skip
    # Ward codes follow the old districts, so neighbouring codes make a sensible region.
    group_count = max(1, round(len(wards) / 10))
    groups = [wards[i * len(wards) // group_count : (i + 1) * len(wards) // group_count] for i in range(group_count)]
    stations = []
    for number, group in enumerate(groups, start=1):
        centre = f"TTYT-{p}-{number:02d}"
        first_code, first_name, first_type = group[0]
        plans.append(
            UnitPlan(centre, f"Trung tâm Y tế khu vực {_bare_name(first_name, first_type)}", UnitKind.REGIONAL_CENTRE,
                     department, f"ttyt{p}.kv{number:02d}@example.vn", tuple(code for code, _n, _t in group),
                     f"ttyt{p}.kv{number:02d}", Role.UNIT_STAFF)
        )  # fmt: skip
        for code, name, _type in group:
            stations.append(
                UnitPlan(f"TYT-{code:05d}", f"Trạm Y tế {name}", UnitKind.COMMUNE_STATION, centre,
                         f"tyt{code:05d}@example.vn", (code,), f"tyt{code:05d}", Role.UNIT_STAFF)
            )  # fmt: skip
    plans.extend(stations)
    plans.append(
        UnitPlan(f"BVDK-{p}", f"Bệnh viện Đa khoa {label}", UnitKind.HOSPITAL, department, f"bvdk{p}@example.vn", (),
                 f"bvdk{p}.nhaplieu", Role.DATA_CLERK)
    )  # fmt: skip
    plans.append(
        UnitPlan(f"BVSN-{p}", f"Bệnh viện Sản Nhi {bare}", UnitKind.HOSPITAL, department, f"bvsn{p}@example.vn", (),
                 f"bvsn{p}.nhaplieu", Role.DATA_CLERK)
    )  # fmt: skip
    site_wards = [groups[0][0], groups[len(groups) // 2][-1]]
    for number, (_code, name, ward_type) in enumerate(site_wards, start=1):
        plans.append(
            UnitPlan(f"DTC-{p}-{number:02d}", f"Điểm tiêm chủng số {number} {_bare_name(name, ward_type)}",
                     UnitKind.VACCINATION_SITE, cdc, f"dtc{p}.{number:02d}@example.org", (), f"dtc{p}.{number:02d}",
                     Role.UNIT_STAFF)
        )  # fmt: skip
    return plans


def _staff_name(rng, surname):
    gender = "M" if rng.random() < 0.5 else "F"
    middles, givens = MIDDLE_NAMES[gender], GIVEN_NAMES[gender]
    middle = TRADITIONAL_MIDDLE[gender] if rng.random() < 0.4 else middles[int(rng.random() * len(middles))]
    return f"{surname(rng)} {middle} {givens[int(rng.random() * len(givens))]}"


def _create_units(plans, province_code):
    """Create the planned units and their jurisdictions; return them by code."""
    units = {}
    for plan in plans:
        unit = HealthUnit.create(
            code=plan.code,
            name=plan.name,
            kind=plan.kind,
            parent=units[plan.parent_code] if plan.parent_code else None,
            province=province_code,
            email=plan.email,
        )
        unit.set_wards(plan.ward_codes)
        units[plan.code] = unit
    return units


def _create_accounts(plans, units, seed):
    """One account per unit, plus a system administrator at the Department, each with a one-time password."""
    rng = random.Random(f"{seed}:staff")
    surname = _Picker(SURNAMES)
    wanted = [(plan.username, plan.role, units[plan.code]) for plan in plans]
    if not Staff.select().where(Staff.username == "admin").exists():
        wanted.insert(0, ("admin", Role.SYSTEM_ADMIN, units[plans[0].code]))
    accounts = []
    for username, role, unit in wanted:
        account = Staff(
            username=username, full_name=_staff_name(rng, surname), unit=unit, role=role, email=f"{username}@example.vn"
        )
        password = account.issue_one_time_password()
        account.save(force_insert=True)
        accounts.append(DemoAccount(username, role, unit.code, unit.name, password))
    return accounts


def _ensure_vaccines():
    """Create the EPI catalogue when no vaccine is configured yet; return {code: id}."""
    if not Vaccine.select().exists():
        for code, name, disease, doses, boosters in VACCINES:
            Vaccine.create(code=code, name=name, disease=disease, doses_in_schedule=doses, boosters_allowed=boosters)
    return dict(Vaccine.select(Vaccine.code, Vaccine.id).where(Vaccine.code.in_([v[0] for v in VACCINES])).tuples())


# Bulk writing
class _SqliteWriter:
    """executemany on the raw connection: peewee's insert_many spends far longer building the SQL."""

    def __init__(self, stamp):
        self.stamps = (stamp, stamp)
        self.fill_search_index = False
        self.unindexed = []  # (first id, last id) of citizens not yet in the search index
        self.merging_off = False

    def encode(self, rows):
        """Rows ready for write(); runs in the child process of a big load."""
        stamps = self.stamps
        return [row + stamps for row in rows]

    def write(self, table, columns, payload):
        names = ", ".join(f'"{c}"' for c in (*columns, "created_at", "updated_at"))
        marks = ", ".join("?" * (len(columns) + 2))
        db.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', payload)

    def after_citizens(self, first_id, last_id):
        """Note the batch for the search index, which the triggers would have filled."""
        if self.fill_search_index:
            self.unindexed.append((first_id, last_id))

    def between_batches(self):
        """Index one noted batch of citizens while the child builds the next batch of records.

        Writing citizens keeps this process busier than the child that builds them, and writing
        records leaves it waiting for the child: the search index is built in those waits.
        """
        if not self.unindexed:
            return
        if not self.merging_off:
            # Merging segments after each batch costs more than merging them all once at the end.
            set_search_automerge(0)
            self.merging_off = True
        first_id, last_id = self.unindexed.pop(0)
        db.execute_sql(
            "INSERT INTO citizen_fts(rowid, search_text) SELECT id, search_text FROM citizen WHERE id BETWEEN ? AND ?",
            (first_id, last_id),
        )

    def finish(self):
        """Index whatever citizens are left, merge the index into one segment, merge as usual again."""
        while self.unindexed:
            self.between_batches()
        if self.merging_off:
            db.execute_sql("INSERT INTO citizen_fts(citizen_fts) VALUES ('optimize')")
            set_search_automerge(FTS_DEFAULT_AUTOMERGE)
            self.merging_off = False

    def suspended(self, tables):
        """Secondary indexes and the search triggers, set aside for a big load."""
        marks = ", ".join("?" * len(tables))
        query = (
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({marks}) AND sql IS NOT NULL"
        )
        steps = [(f'DROP INDEX "{name}"', sql) for name, sql in db.execute_sql(query, tables).fetchall()]
        if "citizen" in tables:
            self.fill_search_index = True
            triggers = [t for t in SQLITE_SEARCH if t.startswith("CREATE TRIGGER IF NOT EXISTS citizen_fts_")]
            steps += [(f'DROP TRIGGER "{t.split()[5]}"', t) for t in triggers]
        return _Suspended(steps, on_exit=self._stop_filling)

    def _stop_filling(self):
        self.fill_search_index = False


class _PostgresWriter:
    """COPY FROM STDIN: an order of magnitude faster than multi-row INSERTs through psycopg2."""

    def __init__(self, stamp):
        self.tail = f"\t{stamp}\t{stamp}\n"

    def encode(self, rows):
        """COPY text for the rows; runs in the child process of a big load."""
        tail = self.tail
        # Generated text never holds a tab, newline or backslash, so no COPY escaping is needed.
        return "".join(["\t".join(["\\N" if v is None else str(v) for v in row]) + tail for row in rows])

    def write(self, table, columns, payload):
        names = ", ".join(f'"{c}"' for c in (*columns, "created_at", "updated_at"))
        db.connection().cursor().copy_expert(f'COPY "{table}" ({names}) FROM STDIN', io.StringIO(payload))

    def after_citizens(self, first_id, last_id):
        """The GIN search index is kept up to date by the server itself."""

    def between_batches(self):
        """Nothing waits for the records pass."""

    def finish(self):
        """Nothing is left to do."""

    def suspended(self, tables):
        """Foreign keys and B-tree indexes, set aside for a big load.

        Checking a foreign key row by row costs more than one validating join at the end. The GIN search
        index stays: the server maintains it while this process builds the next batch, which is faster
        than building it afterwards.
        """
        db.execute_sql("SET LOCAL maintenance_work_mem = '256MB'")
        constraints = db.execute_sql(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)",
            (list(tables),),
        ).fetchall()
        indexes = db.execute_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(%s) AND i.indexdef LIKE '%% USING btree %%' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (list(tables),),
        ).fetchall()
        steps = [
            (
                f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"',
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}',
            )
            for table, name, definition in constraints
        ]
        steps += [(f'DROP INDEX "{name}"', sql) for name, sql in indexes]
        return _Suspended(steps)


class _Suspended:
    """Undo steps before a big load and redo them after, so that the schema ends as it began."""

    def __init__(self, steps=(), on_exit=None):
        self.steps = list(steps)
        self.on_exit = on_exit

    def __enter__(self):
        for undo, _redo in self.steps:
            db.execute_sql(undo)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.on_exit:
            self.on_exit()
        # On an error the surrounding transaction rolls back, which restores everything.
        if exc_type is None:
            for _undo, redo in self.steps:
                db.execute_sql(redo)
        return False


def _batches(make, parallel):
    """Yield make()'s batches; for big loads a forked child builds them while this process writes."""
    if not parallel:
        yield from make()
        return
    # Building rows and writing them each take about half the time: on two cores they overlap.
    yield from _Producer(make)


class _Producer:
    """make()'s batches, built by a child forked now and read later, `ahead` batches at most in advance."""

    def __init__(self, make, ahead=4):
        context = multiprocessing.get_context("fork")
        self.queue = context.Queue(maxsize=ahead)
        self.child = context.Process(target=_produce, args=(make, self.queue), daemon=True)
        self.child.start()

    def __iter__(self):
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                if isinstance(item, str):
                    raise DemoDataError(item)
                yield item
        finally:
            self.close()

    def close(self):
        if self.child.is_alive():
            self.child.join(timeout=0.1 if self.queue.empty() else 0)
        if self.child.is_alive():
            self.child.terminate()
            self.child.join(timeout=5)


def _produce(make, queue):
    """In the child: put each batch on the queue, then None; or the error's text."""
    try:
        for batch in make():
            queue.put(batch)
        queue.put(None)
    except Exception as exc:  # the parent re-raises it: a child's traceback would be lost
        queue.put(f"building demo rows failed: {exc!r}")


def _next_id(model):
    return (model.select(fn.MAX(model.id)).scalar() or 0) + 1


def _reset_sequences(*models):
    """Explicit ids leave PostgreSQL's sequences behind; move them past the new rows."""
    for model in models:
        table = model._meta.table_name
        db.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM \"{table}\"))")


def _is_bulk(model, count):
    """A load big enough that rebuilding indexes once beats maintaining them row by row."""
    return count >= BULK_THRESHOLD and count >= model.select().count()


def generate(citizens, province_code=22, seed=1, echo=print):
    """Load demo units, accounts, citizens and records for one province; refuse if it already has them."""
    province = Province.get_or_none(Province.code == province_code)
    if province is None:
        raise DemoDataError(f"There is no province with code {province_code}; run init-db first.")
    wards = _ward_rows(province_code)
    plans = plan_units(province_code, province.name, province.division_type, wards)
    codes = [plan.code for plan in plans]
    existing = sorted(code for (code,) in HealthUnit.select(HealthUnit.code).where(HealthUnit.code.in_(codes)).tuples())
    if existing:
        raise DemoDataError(
            f"{province.name} already has demo units ({', '.join(existing[:3])}, …); "
            "load demo data into an empty database or choose another province."
        )
    settings = config.load_settings()
    result = DemoResult(province.name, seed, sign_in_url=f"http://{settings['HOST']}:{settings['PORT']}/admin/")
    writer = (_PostgresWriter if is_postgres() else _SqliteWriter)(str(utcnow()))
    with db.atomic():
        vaccines = _ensure_vaccines()
        units = _create_units(plans, province_code)
        result.units = len(units)
        echo(f"demo data: {len(units)} health units; hashing {len(plans) + 1} one-time passwords…")
        result.accounts = _create_accounts(plans, units, seed)
        if citizens > 0:
            province_row = (province_code, province.name, province.division_type)
            facilities = DemoFacilities(
                station_by_ward=[units[f"TYT-{code:05d}"].id for code, _n, _t in wards],
                centre_by_ward=[units[p.parent_code].id for p in plans if p.kind == UnitKind.COMMUNE_STATION],
                general_hospital=units[f"BVDK-{province_code:02d}"].id,
                maternity_hospital=units[f"BVSN-{province_code:02d}"].id,
                sites=[u.id for u in units.values() if u.kind == UnitKind.VACCINATION_SITE],
                vaccines=vaccines,
            )
            records = _RecordsPass(writer, facilities, seed, province_code)
            # The records' child starts as soon as the last citizen is written, and builds while this
            # process rebuilds the citizens' indexes.
            try:
                _load_people(writer, result, province_row, wards, citizens, seed, echo, then=records.start)
                records.load(result, echo)
            finally:
                records.close()
    if citizens > 0:
        # Fresh statistics, or the planner guesses: without them PostgreSQL scanned a commune's rows
        # and folded each one instead of using the search index (250 ms instead of 7 ms at 20,000).
        echo("updating the query planner's statistics…")
        # On PostgreSQL VACUUM too: it marks the new rows visible to all at once (2 s at a million
        # citizens), instead of the first reads of each page doing it and autovacuum later
        # competing with the pages being served (the record page's p99 under load: 115 ms before, 93 after).
        db.execute_sql("VACUUM ANALYZE" if is_postgres() and not db.in_transaction() else "ANALYZE")
    return result


def _load_people(writer, result, province, wards, count, seed, echo, then=None):
    """Write households, citizens and family relations; then(cohort) before their indexes are rebuilt."""
    first_household, first_citizen = _next_id(Household), _next_id(Citizen)
    taken = set()
    if Citizen.select().exists():
        taken = {code for (code,) in Citizen.select(Citizen.health_code).tuples().iterator()}
    cohort = _Cohort(wards, first_citizen)
    bulk = _is_bulk(Citizen, count)
    tables = ("household", "citizen", "family_relation")
    started = time.perf_counter()
    next_report = PROGRESS_EVERY

    def make():
        for households, citizens, relations in iter_people(
            province, wards, count, seed, first_household, first_citizen, taken
        ):
            payloads = (writer.encode(households), writer.encode(citizens), writer.encode(relations))
            yield payloads, (len(households), len(citizens), len(relations)), cohort.facts(citizens)

    with writer.suspended(tables) if bulk else _Suspended():
        for (households, citizens, relations), counts, facts in _batches(make, parallel=bulk):
            writer.write("household", HOUSEHOLD_COLUMNS, households)
            writer.write("citizen", CITIZEN_COLUMNS, citizens)
            writer.after_citizens(first_citizen + result.citizens, first_citizen + result.citizens + counts[1] - 1)
            writer.write("family_relation", RELATION_COLUMNS, relations)
            cohort.add(facts)
            result.households += counts[0]
            result.citizens += counts[1]
            result.relations += counts[2]
            if result.citizens >= next_report:
                rate = result.citizens / (time.perf_counter() - started)
                echo(f"citizens: {result.citizens:,} of {count:,} ({rate:,.0f}/s)")
                next_report += PROGRESS_EVERY
        if then is not None:
            then(cohort)
        if bulk:
            echo("citizens: rebuilding indexes and checking foreign keys…")
    if is_postgres():
        _reset_sequences(Household, Citizen)
    result.citizens_seconds = time.perf_counter() - started
    return cohort


# Batches of records the child may build ahead while the citizens' indexes are rebuilt (a few MB each).
RECORDS_AHEAD = 32
RECORD_TABLES = {
    "condition": ("conditions", CONDITION_COLUMNS),
    "allergy": ("allergies", ALLERGY_COLUMNS),
    "encounter": ("encounters", ENCOUNTER_COLUMNS),
    "vaccination": ("vaccinations", VACCINATION_COLUMNS),
}


class _RecordsPass:
    """Conditions, allergies, encounters and vaccinations for the citizens just written."""

    def __init__(self, writer, facilities, seed, province_code):
        self.writer, self.facilities, self.seed, self.province_code = writer, facilities, seed, province_code
        self.cohort = self.bulk = self.producer = None

    def start(self, cohort):
        """Called once every citizen is written: a big load's child starts building records now."""
        self.cohort = cohort
        self.bulk = _is_bulk(Vaccination, 2 * len(cohort))
        if self.bulk:
            self.producer = _Producer(self._make, ahead=RECORDS_AHEAD)

    def _make(self):
        maker = _RecordsMaker(self.seed, self.cohort, self.facilities, self.province_code)
        for rows in maker.batches():
            yield {table: (self.writer.encode(table_rows), len(table_rows)) for table, table_rows in rows.items()}

    def close(self):
        """Stop the child if it is still running (after an error in this process)."""
        if self.producer is not None:
            self.producer.close()

    def load(self, result, echo):
        writer, cohort = self.writer, self.cohort
        counts = {name: 0 for name, _columns in RECORD_TABLES.values()}
        started = time.perf_counter()
        done = 0
        next_report = PROGRESS_EVERY
        batches = self.producer if self.bulk else self._make()
        with writer.suspended(tuple(RECORD_TABLES)) if self.bulk else _Suspended():
            for batch in batches:
                for table, (payload, count) in batch.items():
                    name, columns = RECORD_TABLES[table]
                    writer.write(table, columns, payload)
                    counts[name] += count
                writer.between_batches()
                done += PEOPLE_PER_BATCH
                if next_report <= done < len(cohort):
                    rate = sum(counts.values()) / (time.perf_counter() - started)
                    echo(f"records: citizens {done:,} of {len(cohort):,} ({rate:,.0f} rows/s)")
                    next_report += PROGRESS_EVERY
            writer.finish()  # before the indexes come back, inside the records' time
        result.records = counts
        result.records_seconds = time.perf_counter() - started
