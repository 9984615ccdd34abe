"""Citizen import (issue 6): files, bad rows, upserts, atomicity, scope, audit, CLI and the upload page."""

import datetime
import io
import pickle
import re
import threading
import unicodedata

import psycopg2
import pytest
from flask_babel import force_locale
from openpyxl import Workbook
from openpyxl import load_workbook

from models.accounts import Role
from models.accounts import Scope
from models.accounts import Staff
from models.audit import AuditEvent
from models.base import db
from models.base import is_postgres
from models.citizens import Citizen
from models.citizens import Household
from models.duplicates import DuplicateCandidate
from models.validation import FieldError
from models.validation import is_portal_health_code
from services import citizen_import
from services.citizen_import import ImportFileError
from services.citizen_import import import_citizens
from services.jobs import run_one
from tests.factories import QUANG_NINH
from tests.factories import make_citizen
from tests.factories import make_staff
from tests.factories import make_unit
from tests.factories import wards_of
from tests.helpers import csrf_from
from tests.helpers import sign_in

TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
VI_HEADERS = ["Họ và tên", "Ngày sinh", "Giới tính", "Số điện thoại", "Số CMND/CCCD", "Mã xã/phường", "Số hộ khẩu"]


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def wards(ctx):
    return wards_of(QUANG_NINH, 3)


def write_csv(path, rows, encoding="utf-8", delimiter=","):
    text = "\r\n".join(delimiter.join(str(c) for c in row) for row in rows) + "\r\n"
    path.write_bytes(to_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return path


def to_cp1258(text):
    """Text as Windows-1258 stores it: vowel marks composed, tone marks as combining characters."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", char)
        tones = "".join(p for p in parts[1:] if p in TONE_MARKS)
        others = "".join(p for p in parts[1:] if p not in TONE_MARKS)
        out += (unicodedata.normalize("NFC", parts[0] + others) + tones).encode("cp1258")
    return bytes(out)


def write_xlsx(path, rows):
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def good_rows(ward):
    code = f"{ward:05d}"
    return [
        VI_HEADERS,
        ["Nguyễn Văn An", "25/12/1990", "Nam", "0912345678", "022090001234", code, "HK-1"],
        ["Trần Thị Bình", "01/02/1985", "Nữ", "0987654321", "022185000001", code, "HK-1"],
        ["Lê Thị Cúc", "03/04/2015", "Nữ", "", "", code, ""],
    ]


def test_a_good_file_creates_citizens_households_and_health_codes(wards, tmp_path):
    path = write_csv(tmp_path / "xa.csv", good_rows(wards[0]))
    result = import_citizens(path, Scope.everything())
    assert result.counts_line() == "created=3 updated=0 unchanged=0 rejected=0"
    assert result.rejected_path is None and not (tmp_path / "xa-rejected.xlsx").exists()
    an = Citizen.get(Citizen.national_id == "022090001234")
    assert an.full_name == "Nguyễn Văn An" and an.date_of_birth == datetime.date(1990, 12, 25) and an.gender == "M"
    assert is_portal_health_code(an.health_code) and an.health_code.startswith("22")
    assert an.household.book_number == "HK-1" and Household.select().count() == 1
    assert Citizen.matching("nguyen van an").count() == 1
    assert list(Citizen.matching(an.health_code)) == [an]  # the issued code is searchable


def test_every_kind_of_bad_row_is_rejected_with_row_column_and_reason(wards, tmp_path):
    code = f"{wards[0]:05d}"
    rows = [
        VI_HEADERS,
        ["Nguyễn Văn An", "25/12/1990", "Nam", "0912345678", "022090001234", code, ""],
        ["Bad Phone", "01/01/1980", "Nam", "0123", "", code, ""],
        ["Bad CCCD", "01/01/1980", "Nam", "", "999080000001", code, ""],
        ["Unknown Commune", "01/01/1980", "Nam", "", "", "99999", ""],
        ["Future Birth", "01/01/2999", "Nam", "", "", code, ""],
        ["Nguyễn Văn An", "25/12/1990", "Nam", "0912345678", "022090001234", code, ""],
        ["", "01/01/1980", "Nam", "", "", code, ""],
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    result = import_citizens(path, Scope.everything())
    assert result.counts_line() == "created=1 updated=0 unchanged=0 rejected=6"
    found = {(r.row, r.column) for r in result.rejected}
    assert found == {
        (3, "Số điện thoại"),
        (4, "Số CMND/CCCD"),
        (5, "Mã xã/phường"),
        (6, "Ngày sinh"),
        (7, "Số CMND/CCCD"),
        (8, "Họ và tên"),
    }
    reasons = {r.row: r.reason for r in result.rejected}
    assert "10" in reasons[3] and "999" in reasons[4] and "99999" in reasons[5]
    assert "tương lai" in reasons[6]  # Vietnamese, whatever the caller's language
    assert "2" in reasons[7]  # names the first occurrence

    sheet = load_workbook(result.rejected_path).active
    table = list(sheet.values)
    assert table[0] == (*VI_HEADERS, "Dòng", "Cột", "Lý do")
    assert [row[7] for row in table[1:]] == [3, 4, 5, 6, 7, 8]
    assert table[1][:4] == ("Bad Phone", "01/01/1980", "Nam", "0123") and table[1][8] == "Số điện thoại"


def test_the_rejected_file_can_be_fixed_and_imported_again(wards, tmp_path):
    code = f"{wards[0]:05d}"
    path = write_csv(tmp_path / "f.csv", [VI_HEADERS, ["Bad Phone", "01/01/1980", "Nam", "0123", "", code, ""]])
    result = import_citizens(path, Scope.everything())
    workbook = load_workbook(result.rejected_path)
    sheet = workbook.active
    sheet["D2"] = "+84 912 000 111"
    fixed = tmp_path / "fixed.xlsx"
    workbook.save(fixed)
    with pytest.raises(ImportFileError, match="Dòng"):
        import_citizens(fixed, Scope.everything())  # the reason columns must go before re-import
    sheet.delete_cols(8, 3)
    workbook.save(fixed)
    again = import_citizens(fixed, Scope.everything())
    assert again.counts_line() == "created=1 updated=0 unchanged=0 rejected=0"
    assert Citizen.get().phone == "0912000111"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("zero.xlsx", b"", "0 byte"),
        ("zero.csv", b"", "0 byte"),
        ("blank.csv", b"\r\n ,, \r\n", "không có dòng tiêu đề"),
        ("header-only.csv", "Họ và tên,Mã xã/phường\r\n".encode(), "không có công dân"),
        ("renamed.xlsx", b"Ho va ten,Ma xa\r\nAn,1\r\n", "không phải là bảng tính Excel"),
        ("wrong-header.csv", "Tên,Mã xã/phường\r\nAn,06652\r\n".encode(), "“Tên”"),
        ("missing.csv", "Họ và tên,Ngày sinh\r\nAn,01/01/1990\r\n".encode(), "“Mã xã/phường”"),
        ("twice.csv", "Họ và tên,full_name,Mã xã/phường\r\nAn,An,06652\r\n".encode(), "hai lần"),
        ("notes.txt", b"full_name\r\n", ".xlsx"),
    ],
)
def test_a_file_that_cannot_be_read_gives_one_clear_error_and_writes_nothing(ctx, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError) as caught:
        import_citizens(path, Scope.everything())
    assert message in str(caught.value)
    assert Citizen.select().count() == 0 and AuditEvent.select().count() == 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1258"])
def test_csv_in_utf8_with_or_without_bom_and_in_windows_1258(wards, tmp_path, encoding):
    path = write_csv(tmp_path / "enc.csv", good_rows(wards[0]), encoding=encoding)
    assert citizen_import.csv_encoding(path) == ("cp1258" if encoding == "cp1258" else "utf-8-sig")
    result = import_citizens(path, Scope.everything())
    assert result.created == 3, result.rejected
    names = sorted(c.full_name for c in Citizen.select())
    assert names == sorted(["Nguyễn Văn An", "Trần Thị Bình", "Lê Thị Cúc"])
    assert all(unicodedata.is_normalized("NFC", n) for n in names)


def test_keys_or_headers_in_any_order_any_case_and_semicolons(wards, tmp_path):
    rows = [
        ["WARD_CODE", "ho va ten", "  SỐ ĐIỆN   THOẠI ", "date_of_birth", "email", "Nghề nghiệp", "Dân tộc"],
        [f"{wards[1]:05d}", "Phạm Văn Dũng", "+84 912 345 679", "02/03/1970", "DUNG@Example.vn", "Nông dân", "Tày"],
    ]
    result = import_citizens(write_csv(tmp_path / "k.csv", rows, delimiter=";"), Scope.everything())
    assert result.created == 1, result.rejected
    dung = Citizen.get()
    assert (dung.ward_id, dung.phone, dung.email) == (wards[1], "0912345679", "dung@example.vn")
    assert (dung.occupation, dung.ethnicity) == ("Nông dân", "Tày")


def test_xlsx_with_numbers_and_dates_excel_made_of_the_cells(wards, tmp_path):
    rows = [
        ["full_name", "date_of_birth", "gender", "phone", "national_id", "ward_code", "health_code"],
        ["Nguyễn Văn An", datetime.datetime(1990, 12, 25), "Nam", 912345678, 22090001234, wards[0], "QN-OLD-0001"],
    ]
    result = import_citizens(write_xlsx(tmp_path / "n.xlsx", rows), Scope.everything())
    assert result.created == 1, result.rejected
    an = Citizen.get()
    assert (an.phone, an.national_id, an.health_code) == ("0912345678", "022090001234", "QN-OLD-0001")


def test_importing_the_same_file_twice_changes_nothing(wards, tmp_path):
    path = write_csv(tmp_path / "twice.csv", good_rows(wards[0]))
    import_citizens(path, Scope.everything())
    before = list(Citizen.select().order_by(Citizen.id).tuples())
    again = import_citizens(path, Scope.everything())
    assert again.counts_line() == "created=0 updated=0 unchanged=3 rejected=0"
    assert list(Citizen.select().order_by(Citizen.id).tuples()) == before
    assert Household.select().count() == 1


def test_upsert_by_health_code_else_national_id_and_blank_cells_keep_values(wards, tmp_path):
    kept = make_citizen(wards[0], health_code="OLD-123", phone="0912000001", occupation="Giáo viên")
    by_id = make_citizen(wards[0], full_name="Trần Thị Bình", national_id="022185000001", gender="F")
    rows = [
        ["health_code", "full_name", "phone", "occupation", "national_id", "gender", "ward_code"],
        ["old-123", "Nguyễn Văn An", "0912000002", "", "", "", wards[0]],
        ["", "Trần Thị Bình", "0912000003", "", "022185000001", "Nữ", wards[0]],
    ]
    result = import_citizens(write_csv(tmp_path / "u.csv", rows), Scope.everything())
    assert result.counts_line() == "created=0 updated=2 unchanged=0 rejected=0"
    kept, by_id = Citizen.get_by_id(kept.id), Citizen.get_by_id(by_id.id)
    assert (kept.phone, kept.occupation, kept.health_code) == ("0912000002", "Giáo viên", "OLD-123")
    assert by_id.phone == "0912000003" and by_id.health_code  # its code is kept
    assert Citizen.matching("0912000003").count() == 1  # the search text follows the change


def test_an_id_number_on_another_record_is_rejected(wards, tmp_path):
    make_citizen(wards[0], health_code="A-0001")
    make_citizen(wards[0], health_code="B-0002", national_id="022090001234", gender="M")
    rows = [["health_code", "full_name", "national_id", "ward_code"], ["A-0001", "An", "022090001234", wards[0]]]
    result = import_citizens(write_csv(tmp_path / "c.csv", rows), Scope.everything())
    assert result.updated == 0 and len(result.rejected) == 1
    assert "B-0002" in result.rejected[0].reason


def test_a_dry_run_counts_and_writes_nothing_but_the_rejected_rows(wards, tmp_path):
    rows = [*good_rows(wards[0]), ["Bad", "01/01/2999", "", "", "", f"{wards[0]:05d}", ""]]
    path = write_csv(tmp_path / "dry.csv", rows)
    result = import_citizens(path, Scope.everything(), dry_run=True)
    assert result.counts_line() == "created=3 updated=0 unchanged=0 rejected=1"
    assert Citizen.select().count() == 0 and Household.select().count() == 0 and AuditEvent.select().count() == 0
    assert (tmp_path / "dry-rejected.xlsx").exists()


def test_a_crash_part_way_leaves_nothing_written(wards, tmp_path, monkeypatch):
    rows = [VI_HEADERS] + [[f"Người {n}", "01/01/1980", "Nam", "", "", f"{wards[0]:05d}", f"HK-{n}"] for n in range(10)]
    path = write_csv(tmp_path / "crash.csv", rows)
    real_create = citizen_import._Importer._create
    calls = []

    def failing_create(self, creates, households):
        calls.append(len(creates))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real_create(self, creates, households)

    monkeypatch.setattr(citizen_import._Importer, "_create", failing_create)
    schema_before = citizen_schema()
    with pytest.raises(RuntimeError):
        import_citizens(path, Scope.everything(), batch_size=3)
    assert calls == [3, 3, 3]  # two batches were written before the failure
    assert Citizen.select().count() == 0 and Household.select().count() == 0 and AuditEvent.select().count() == 0
    assert citizen_schema() == schema_before  # the bulk load's dropped indexes are back
    monkeypatch.undo()
    assert import_citizens(path, Scope.everything(), batch_size=3).created == 10


def test_rows_outside_the_importers_jurisdiction_are_rejected(wards, tmp_path):
    outsider = make_citizen(wards[1], health_code="OUT-0001")
    rows = [
        ["full_name", "date_of_birth", "health_code", "ward_code"],
        ["Mine", "01/01/1980", "", wards[0]],
        ["Not mine", "01/01/1980", "", wards[1]],
        ["Moved in", "01/01/1980", "OUT-0001", wards[0]],
    ]
    result = import_citizens(write_csv(tmp_path / "s.csv", rows), Scope([wards[0]]))
    assert result.counts_line() == "created=1 updated=0 unchanged=0 rejected=2"
    assert [(r.row, r.column) for r in result.rejected] == [(3, "ward_code"), (4, "ward_code")]
    assert Citizen.get_by_id(outsider.id).full_name == outsider.full_name


def test_the_import_is_audited_once_with_counts_and_batches_of_ids(wards, tmp_path):
    path = write_csv(tmp_path / "audit.csv", good_rows(wards[0]))
    result = import_citizens(path, Scope.everything(), batch_size=2)
    events = list(AuditEvent.select().where(AuditEvent.object_type == "citizen_import").order_by(AuditEvent.id))
    assert len(events) == 3  # two batches and the summary
    assert sorted(events[0].details["created_ids"] + events[1].details["created_ids"]) == sorted(result.created_ids)
    summary = events[-1].details
    assert summary["file"] == "audit.csv" and summary["created"] == 3 and summary["rejected"] == 0
    assert AuditEvent.select().count() == 3  # not one event per citizen


def test_the_command_prints_counts_on_its_last_line_and_fails_on_a_bad_file(app, wards, tmp_path):
    path = write_csv(tmp_path / "cli.csv", good_rows(wards[0]))
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["import-citizens", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.strip().splitlines()[-1] == "created=3 updated=0 unchanged=0 rejected=0"
    db.connect(reuse_if_open=True)
    assert Citizen.select().count() == 0
    done = runner.invoke(args=["import-citizens", str(path)])
    assert done.stdout.strip().splitlines()[-1] == "created=3 updated=0 unchanged=0 rejected=0"
    again = runner.invoke(args=["import-citizens", str(path)])
    assert again.stdout.strip().splitlines()[-1] == "created=0 updated=0 unchanged=3 rejected=0"
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    failed = runner.invoke(args=["import-citizens", str(empty)])
    assert failed.exit_code != 0 and "0 byte" in failed.output and "Traceback" not in failed.output
    db.connect(reuse_if_open=True)


def test_the_template_has_the_vietnamese_headers_and_imports_as_is(wards, tmp_path):
    path = tmp_path / "template.xlsx"
    path.write_bytes(citizen_import.template_workbook())
    header = next(load_workbook(path).active.values)
    assert list(header) == [h for _k, h in citizen_import.COLUMNS]
    result = import_citizens(path, Scope.everything(), dry_run=True)
    assert result.counts_line() == "created=1 updated=0 unchanged=0 rejected=0", result.rejected


# The upload page


@pytest.fixture
def station(app, tmp_path):
    """A commune station covering the first ward, its account, and a department leader."""
    app.config["IMPORT_DIR"] = str(tmp_path / "uploads")
    with app.app_context():
        wards = wards_of(QUANG_NINH, 3)
        unit = make_unit(wards=[wards[0]], code="TYT-TEST")
        make_staff(unit, role=Role.UNIT_STAFF, username="station")
        make_staff(unit, role=Role.DEPARTMENT_LEADER, username="leader")
    return wards


def upload(client, path, token=True):
    data = {"file": (io.BytesIO(path.read_bytes()), path.name)}
    if token:
        data["csrf_token"] = csrf_from(client.get("/admin/citizens/import/").text)
    return client.post("/admin/citizens/import/preview", data=data, content_type="multipart/form-data")


def test_the_page_previews_a_dry_run_then_imports_in_the_background(app, client, station, tmp_path):
    rows = [*good_rows(station[0]), ["Ngoài xã", "01/01/1980", "Nam", "", "", f"{station[1]:05d}", ""]]
    path = write_csv(tmp_path / "xa.csv", rows)
    sign_in(client, "station")
    page = upload(client, path)
    assert page.status_code == 200
    assert re.search(r'id="created">3<', page.text) and re.search(r'id="rejected">1<', page.text)
    assert "ngoài phạm vi" in page.text.lower() or "jurisdiction" in page.text.lower()
    assert Citizen.select().count() == 0  # a preview writes nothing
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.text).group(1)
    rejected = client.get(f"/admin/citizens/import/{token}/rejected.xlsx")
    assert rejected.status_code == 200
    assert list(load_workbook(io.BytesIO(rejected.data)).active.values)[1][7] == 5
    rejected.close()

    confirm = client.post(
        "/admin/citizens/import/confirm",
        data={"token": token, "csrf_token": csrf_from(page.text)},
    )
    assert confirm.status_code == 302
    job = run_one(tmp_path / "jobs", app=app)
    assert job.status == "done", job.message
    assert job.message == "created=3 updated=0 unchanged=0 rejected=1"
    assert Citizen.select().count() == 3 and all(c.ward_id == station[0] for c in Citizen.select())
    summary = AuditEvent.select().where(AuditEvent.object_type == "citizen_import").order_by(AuditEvent.id.desc()).get()
    assert summary.actor == "station" and summary.details["file"] == "xa.csv"
    done = client.get(confirm.headers["Location"])
    assert "created=3" in done.text
    assert not list((tmp_path / "uploads").glob("*.csv"))  # the upload is gone once imported
    download = client.get(f"/admin/citizens/import/jobs/{job.id}/rejected.xlsx")
    assert download.status_code == 200 and download.data[:2] == b"PK"
    download.close()
    # A colleague of the same station, who may import too, cannot open another's job or its file.
    make_staff(Staff.get(Staff.username == "station").unit, role=Role.UNIT_STAFF, username="colleague")
    client.delete_cookie("session")
    sign_in(client, "colleague")
    assert client.get(f"/admin/citizens/import/jobs/{job.id}/").status_code == 404
    assert client.get(f"/admin/citizens/import/jobs/{job.id}/rejected.xlsx").status_code == 404


def test_the_page_refuses_a_post_without_csrf_token_and_accounts_that_may_not_create(client, station, tmp_path):
    path = write_csv(tmp_path / "xa.csv", good_rows(station[0]))
    sign_in(client, "station")
    assert upload(client, path, token=False).status_code == 400
    assert client.post("/admin/citizens/import/confirm", data={"token": "0" * 32}).status_code == 400
    client.delete_cookie("session")
    sign_in(client, "leader")
    assert client.get("/admin/citizens/import/").status_code == 403
    assert Citizen.select().count() == 0


def test_the_page_explains_a_bad_file_and_a_too_large_one(client, station, tmp_path, monkeypatch):
    sign_in(client, "station")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    page = client.get(upload(client, bad).headers["Location"])
    assert "bad.xlsx" in page.text and "Excel" in page.text
    monkeypatch.setattr("admin_views.imports.MAX_UPLOAD_BYTES", 100)
    big = write_csv(tmp_path / "big.csv", good_rows(station[0]))
    page = client.get(upload(client, big).headers["Location"])
    assert "MB" in page.text and Citizen.select().count() == 0


def test_the_template_downloads_with_the_vietnamese_headers(client, station):
    sign_in(client, "station")
    response = client.get("/admin/citizens/import/template.xlsx")
    header = next(load_workbook(io.BytesIO(response.data)).active.values)
    assert header[:3] == ("Họ và tên", "Ngày sinh", "Giới tính")


def test_an_issued_health_code_never_takes_one_a_later_row_of_the_file_holds(wards, tmp_path, monkeypatch):
    # Issued codes have 12 digits; the later row holds the first one drawn, written with spaces.
    codes = iter(["221442725091", "221442725096"])
    monkeypatch.setattr(citizen_import, "new_health_code", lambda province, rng: next(codes))
    rows = [
        ["full_name", "date_of_birth", "health_code", "ward_code"],
        ["Không mã", "01/01/1980", "", wards[0]],
        ["Có mã cũ", "02/02/1982", "2214 4272 5091", wards[0]],
    ]
    result = import_citizens(write_csv(tmp_path / "codes.csv", rows), Scope.everything(), batch_size=1)
    assert result.counts_line() == "created=2 updated=0 unchanged=0 rejected=0", result.rejected
    assert Citizen.get(Citizen.full_name == "Không mã").health_code == "221442725096"
    assert Citizen.get(Citizen.full_name == "Có mã cũ").health_code == "221442725091"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1258"])
def test_the_files_codes_are_the_ones_the_csv_module_reads(tmp_path, encoding):
    # The first pass over a CSV (pandas' parser) finds the codes the rows will have: quoted cells
    # with line breaks and semicolons, rows longer or shorter than the header, codes with spaces.
    text = (
        "Họ và tên;Mã sức khỏe;Mã xã\r\n"
        '"Nguyễn\r\nVăn; An";221442725091;06652\r\n'
        "Trần Bình;2214 4272 5092;06652;thừa;ô\r\n"
        "Lê;\r\n"
        "Ngắn\r\n"
        '"Phạm ""Minh""";"221442725093";06652\r\n'
        "Hồ;22-1442-7250;06652\r\n"
    )
    path = tmp_path / "codes.csv"
    path.write_bytes(to_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    keys = [None, "health_code", "ward_code"]
    wanted = ["221442725091", "221442725092", "221442725093"]
    read_by_pandas = citizen_import.file_health_codes(path, keys)
    rows = citizen_import._source_rows(path)
    read_by_csv = citizen_import._portal_codes(values[1] if len(values) > 1 else None for values in rows)
    for codes in (read_by_pandas, read_by_csv):
        assert len(codes) == 3 and None not in codes.first_rows([hash(code) for code in wanted])
    # A quote left open: pandas stops there, the csv module reads the rest as one cell.
    path.write_bytes(text.encode("utf-8") + '"Mở;221442725094;06652\r\n'.encode())
    assert len(citizen_import.file_health_codes(path, keys)) == 3


@pytest.mark.parametrize("batch_size", [1, 2_000])  # the two rows in two batches, then in one
def test_a_row_without_codes_never_overwrites_a_person_made_by_an_earlier_row(wards, tmp_path, batch_size):
    # Two children with the same name and birth date in one commune: the first has a health code, the
    # second none. The second must not be taken for the first (and overwrite its phone).
    code = f"{wards[0]:05d}"
    rows = [
        ["full_name", "date_of_birth", "phone", "health_code", "ward_code"],
        ["Phạm Minh Duy", "09/06/2016", "0912000001", "220000000017", code],
        ["Phạm Minh Duy", "09/06/2016", "0912000002", "", code],
    ]
    result = import_citizens(write_csv(tmp_path / "xa.csv", rows), Scope.everything(), batch_size=batch_size)
    assert (result.created, result.updated, len(result.rejected)) == (1, 0, 1)
    assert result.rejected[0].row == 3 and "2" in str(result.rejected[0].reason)
    assert Citizen.get(Citizen.health_code == "220000000017").phone == "0912000001"


def test_seen_keys_find_the_first_row_across_merged_runs():
    seen = citizen_import.SeenKeys()
    for start in range(0, 10_000, 1_000):  # ten batches: the runs merge as they grow
        seen.add({hash(f"key-{n}"): n + 1 for n in range(start, start + 1_000)})
    assert len(seen) == 10_000 and len(seen.runs) < 10
    keys = [hash("key-0"), None, hash("key-9999"), hash("never"), hash("key-4321")]
    assert seen.first_rows(keys) == [1, None, 10_000, None, 4_322]
    assert citizen_import.SeenKeys().first_rows([hash("x"), None]) == [None, None]


@pytest.mark.parametrize("batch_size", [1, 2, 2_000])
def test_a_repeat_is_rejected_naming_the_first_row_whatever_the_batches(wards, tmp_path, batch_size):
    code = f"{wards[0]:05d}"
    rows = [
        ["full_name", "date_of_birth", "national_id", "health_code", "ward_code"],
        ["Lê Văn Một", "01/01/1980", "022080000001", "", code],
        ["Lê Văn Hai", "02/02/1982", "", "220000000017", code],
        ["Lê Thị Ba", "03/03/1983", "", "", code],
        ["Lê Văn Một", "01/01/1980", "022080000001", "", code],
        ["Lê Văn Bốn", "04/04/1984", "", "220000000017", code],
        ["Lê Thị Ba", "03/03/1983", "", "", code],
    ]
    result = import_citizens(write_csv(tmp_path / "repeats.csv", rows), Scope.everything(), batch_size=batch_size)

    assert (result.created, [r.row for r in result.rejected]) == (3, [5, 6, 7])
    assert [re.findall(r"\d+", r.reason)[0] for r in result.rejected] == ["2", "3", "4"]
    assert [r.column for r in result.rejected] == ["national_id", "health_code", "full_name"]


def test_a_cell_with_a_nul_or_control_character_is_rejected_naming_its_column(wards, tmp_path):
    code = f"{wards[0]:05d}"
    rows = [
        ["full_name", "date_of_birth", "address", "ward_code"],
        ["Trần Văn\x00 Nul", "01/01/1980", "", code],
        ["Trần Văn Bel", "01/01/1981", "Số 1\x07", code],
        ["Trần Văn Tốt", "01/01/1982", "Số 2\tngõ 3", code],
    ]
    result = import_citizens(write_csv(tmp_path / "control.csv", rows), Scope.everything())

    assert result.counts_line() == "created=1 updated=0 unchanged=0 rejected=2"
    assert [(r.row, r.column) for r in result.rejected] == [(2, "full_name"), (3, "address")]
    assert Citizen.get().permanent_address == "Số 2 ngõ 3"
    sheet = list(load_workbook(result.rejected_path).active.values)
    assert sheet[1][0] == "Trần Văn\ufffd Nul"  # marked where the damage is, as a workbook cannot hold it


def test_a_big_import_refreshes_the_planners_statistics_as_the_table_doubles(wards, tmp_path, monkeypatch):
    # Autovacuum cannot see the import's rows before it commits: on PostgreSQL the import ANALYZEs the
    # tables each time it has doubled them (here from 2 rows, so 2, 4 and 8 rows into a 10-row import).
    # One citizen is there before: into an empty table the import is a bulk load (tested below).
    make_citizen(wards[1], full_name="Đã Có Trước")
    monkeypatch.setattr(citizen_import, "BATCH_SIZE", 2)
    analyzed = []
    real_execute = db.obj.execute_sql

    def execute_sql(sql, *args, **kwargs):
        if sql.startswith("ANALYZE"):
            analyzed.append(sql)
        return real_execute(sql, *args, **kwargs)

    monkeypatch.setattr(db.obj, "execute_sql", execute_sql)
    rows = [["full_name", "date_of_birth", "ward_code"]]
    rows += [[f"Người {n}", f"{n + 1:02d}/01/1990", f"{wards[0]:05d}"] for n in range(10)]

    result = import_citizens(write_csv(tmp_path / "ten.csv", rows), Scope.everything(), batch_size=2)

    assert result.created == 10
    if is_postgres():
        citizen = f"ANALYZE citizen ({', '.join(citizen_import.ANALYZED_COLUMNS)})"
        assert analyzed == [citizen, "ANALYZE household"] * 3
        (estimate,) = db.execute_sql("SELECT reltuples FROM pg_class WHERE oid = 'citizen'::regclass").fetchone()
        assert estimate >= 8
    else:
        assert analyzed == []  # SQLite plans without statistics unless asked, and the import never asks


CHECKED_FIELDS = (*citizen_import.PLAIN_FIELDS, "permanent_address", "search_text")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"full_name": "  Đỗ   Hồng  Thoa ", "gender": "Nữ", "phone": "+84 912 345 678"},
        {"date_of_birth": "25/12/1990", "national_id": "022090001234", "gender": "Nam"},
        {"insurance_number": "dn4220123456789", "email": " An@Example.VN ", "permanent_address": "Tổ 2,  khu 3"},
        {"health_code": "22-0000-0001"},
        {"full_name": "   "},
        {"phone": "12345"},
        {"national_id": "0220900012"},
        {"national_id": "001090012345", "gender": "Nữ", "date_of_birth": datetime.date(1990, 1, 2)},
        {"date_of_birth": datetime.date.today() + datetime.timedelta(days=1)},
        {"email": "not an address"},
        {"insurance_number": "XX"},
        {"gender": "không rõ"},
    ],
)
def test_a_checked_row_is_what_the_citizen_model_makes_of_it(ctx, changes):
    # The import checks rows with Citizen.clean() on a plain object (CheckedRow); the model itself
    # must come to the same fields, or to the same error on the same field.
    fields = {name: None for name in citizen_import.PLAIN_FIELDS} | {"permanent_address": None}
    fields |= {"full_name": "Nguyễn Văn An", "date_of_birth": datetime.date(1990, 12, 25), "phone": "0912345678"}
    fields |= changes
    outcomes = []
    with ctx.test_request_context():  # the messages are rendered to be compared
        for thing in (Citizen(ward=6652, **fields), citizen_import.CheckedRow(6652, dict(fields))):
            try:
                thing.clean()
            except citizen_import.FieldError as exc:
                outcomes.append((exc.field, str(exc.message)))
            else:
                outcomes.append({name: getattr(thing, name) for name in CHECKED_FIELDS})
    assert outcomes[0] == outcomes[1]
    assert changes.get("full_name") != "   " or outcomes[0][0] == "full_name"


def test_cells_remembered_down_a_file_are_checked_as_if_each_row_were_alone(ctx, wards, monkeypatch):
    # Dates, genders, occupations and commune codes are worked out once per distinct text: every
    # row still comes to the fields, or to the first error, that checking it alone gives.
    keys = ["full_name", "date_of_birth", "gender", "occupation", "ward_code"]
    ward = f"{wards[0]:05d}"
    rows = [
        ["An", "25/12/1990", "Nam", " Nông  dân ", ward],
        ["", "31/02/1990", "Nam", "", ward],  # no name and a bad date: the name is the error
        ["Bình", "31/02/1990", "nữ", "Nông dân", ward],
        ["Cúc", "25/12/1990", "không rõ", "", ward],
        ["Dũng", "", "F", None, wards[0]],
        ["Em", datetime.datetime(1990, 1, 2), "Nữ", "", 1],
        ["Giang", datetime.datetime(1990, 1, 2), "Nữ", "", True],  # not taken for the 1 before it
        ["Hà", "01/01/2999", "Nữ", "", ward],
        ["Khoa", "1990-12-25", "M", "", "6652x"],
    ]

    def outcomes():
        found = []
        with ctx.test_request_context():
            for values in rows:
                try:
                    found.append(citizen_import.clean_row(list(values), keys, set(wards)))
                except FieldError as exc:
                    found.append((exc.field, str(exc.message)))
        return found

    remembered = [outcomes(), outcomes()]  # the second time from what the first remembered
    assert citizen_import._DATES and citizen_import._WARD_CODES
    monkeypatch.setattr(citizen_import._Remembered, "LIMIT", 0)
    for memory in (citizen_import._DATES, citizen_import._GENDERS, citizen_import._WORDS, citizen_import._WARD_CODES):
        memory.clear()
    alone = outcomes()
    assert not citizen_import._DATES  # nothing remembered this time
    assert remembered == [alone, alone]
    assert alone[1][0] == "full_name" and alone[2][0] == "date_of_birth" and alone[6][0] == "ward"
    assert alone[0][0]["occupation"] == "Nông dân" and alone[0][0]["gender"] == "M"


def table_schema(table):
    """A table's indexes and constraints (and SQLite's triggers), as the database defines them."""
    if is_postgres():
        indexes = db.execute_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,))
        keys = db.execute_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass", (table,)
        )
        return sorted(indexes.fetchall()) + sorted(keys.fetchall())
    return sorted(db.execute_sql("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ?", (table,)).fetchall())


def citizen_schema():
    return table_schema("citizen")


def mixed_rows(ward, other_ward):
    """A file with every kind of row an import sorts: codes given or issued, households old and new,
    likely duplicates by phone and by commune, a repeat and a bad row."""
    a, b = f"{ward:05d}", f"{other_ward:05d}"
    return [
        [
            "full_name",
            "date_of_birth",
            "gender",
            "phone",
            "national_id",
            "health_code",
            "ward_code",
            "household_number",
        ],
        ["Nguyễn Văn An", "25/12/1990", "Nam", "0912345678", "022090001234", "", a, "HK-OLD"],
        ["Nguyen Van An", "25/12/1990", "Nam", "0912345678", "", "220000000017", b, ""],  # same phone
        ["Trần Thị Bình", "01/02/1985", "Nữ", "", "022185000001", "", a, "HK-NEW"],
        ["Tran Thi Binh", "01/02/1985", "Nữ", "0987000001", "", "220000000025", a, "HK-NEW"],  # same commune
        ["Lê Thị Cúc", "03/04/2015", "Nữ", "", "", "", a, ""],
        ["Lê Thị Cúc", "03/04/2015", "Nữ", "", "", "", a, ""],  # repeats row 6
        ["Đỗ Đức Dũng", "31/02/1970", "Nam", "", "", "", a, ""],  # no such date
        ["Phạm Thu Hà", "05/05/2000", "Nữ", "0977000003", "", "", b, "HK-OLD"],
    ]


def import_snapshot(result):
    """What an import made, with nothing that depends on ids or on the codes it issued."""
    by_id = {c.id: c for c in Citizen.select()}
    citizens = sorted(
        (
            c.full_name,
            c.date_of_birth,
            c.phone,
            c.national_id,
            c.ward_id,
            c.household.book_number if c.household else None,
        )
        for c in by_id.values()
    )
    pairs = sorted(
        (sorted([by_id[d.citizen_a_id].full_name, by_id[d.citizen_b_id].full_name]), d.reason)
        for d in DuplicateCandidate.select()
    )
    households = sorted((h.book_number, h.ward_id, h.address) for h in Household.select())
    rejected = [(r.row, r.column, r.reason, r.values) for r in result.rejected]
    return result.counts_line(), citizens, pairs, households, rejected


@pytest.mark.parametrize("old_household", [True, False])  # households: one there before, or bulk loaded too
def test_an_import_into_an_empty_table_makes_what_one_row_by_row_makes(wards, tmp_path, monkeypatch, old_household):
    # The bulk load (indexes dropped and built again, duplicates searched at the end) against the
    # batch-by-batch path on the same file: the same citizens, households, pairs and rejects.
    if old_household:
        Household.create(book_number="HK-OLD", ward=wards[0], address="Tổ 1")
    household_schema = table_schema("household")
    path = write_csv(tmp_path / "mixed.csv", mixed_rows(wards[0], wards[1]))
    schema = citizen_schema()
    bulk_loads = []
    real_drop = citizen_import.bulk_load.drop_indexes

    def drop_indexes(model):
        bulk_loads.append(model.__name__)
        return real_drop(model)

    monkeypatch.setattr(citizen_import.bulk_load, "drop_indexes", drop_indexes)

    bulk = import_citizens(path, Scope.everything(), batch_size=2)
    assert bulk_loads == (["Citizen"] if old_household else ["Citizen", "Household"])
    assert citizen_schema() == schema and table_schema("household") == household_schema
    made = import_snapshot(bulk)
    assert made[0] == "created=6 updated=0 unchanged=0 rejected=2"
    assert made[2] == [
        (["Nguyen Van An", "Nguyễn Văn An"], "name_dob_phone"),
        (["Tran Thi Binh", "Trần Thị Bình"], "name_dob_ward"),
    ]
    assert sorted(bulk.created_ids) == sorted(c.id for c in Citizen.select())
    issued = Citizen.get(Citizen.national_id == "022090001234")
    assert is_portal_health_code(issued.health_code)
    assert list(Citizen.matching("nguyen van an")) != [] and list(Citizen.matching(issued.health_code)) == [issued]
    assert list(Citizen.matching("0977000003")) == [Citizen.get(Citizen.full_name == "Phạm Thu Hà")]
    events = AuditEvent.select().where(AuditEvent.object_type == "citizen_import", AuditEvent.object_id.is_null())
    assert sorted(i for e in events for i in e.details["created_ids"]) == sorted(bulk.created_ids)
    # The same file again, batch by batch, into the same empty tables.
    DuplicateCandidate.delete().execute()
    Citizen.delete().execute()
    Household.delete().where(Household.book_number != "HK-OLD").execute()
    monkeypatch.setattr(citizen_import.bulk_load, "lock_if_empty", lambda model: False)
    loads = len(bulk_loads)
    row_by_row = import_citizens(path, Scope.everything(), batch_size=2)
    assert len(bulk_loads) == loads
    assert import_snapshot(row_by_row) == made
    issued = Citizen.get(Citizen.national_id == "022090001234")  # its search-index entry made batch by batch
    assert list(Citizen.matching("nguyen van an")) != [] and list(Citizen.matching(issued.health_code)) == [issued]
    if is_postgres():  # both draw from the sequence (SQLite gives max(id) + 1 either way)
        assert min(row_by_row.created_ids) > max(bulk.created_ids)


def test_a_bulk_load_never_issues_one_health_code_twice(wards, tmp_path, monkeypatch):
    # The table's unique index is dropped during a bulk load: the codes it issued are remembered instead.
    codes = iter(["SAME-0001", "SAME-0001", "NEXT-0002"])
    monkeypatch.setattr(citizen_import, "new_health_code", lambda province, rng: next(codes))
    rows = [
        ["full_name", "date_of_birth", "ward_code"],
        ["Một", "01/01/1980", wards[0]],
        ["Hai", "02/02/1982", wards[0]],
    ]
    result = import_citizens(write_csv(tmp_path / "codes.csv", rows), Scope.everything(), batch_size=1)
    assert result.counts_line() == "created=2 updated=0 unchanged=0 rejected=0"
    assert sorted(c.health_code for c in Citizen.select()) == ["NEXT-0002", "SAME-0001"]


def test_a_copy_failing_in_the_writers_thread_fails_the_import_and_leaves_nothing(wards, tmp_path, monkeypatch):
    # On PostgreSQL the bulk load's COPYs are sent by a thread of their own: a COPY the server
    # refuses there fails the import in the importer's thread, and the rollback takes everything back.
    if not is_postgres():
        pytest.skip("the COPY writer is PostgreSQL's")
    rows = [VI_HEADERS] + [[f"Người {n}", "01/01/1980", "Nam", "", "", f"{wards[0]:05d}", f"HK-{n}"] for n in range(10)]
    path = write_csv(tmp_path / "copy.csv", rows)
    monkeypatch.setattr(citizen_import._CopyWriter, "COPY_ROWS", 3)
    real_do = citizen_import._CopyWriter._do
    copies = []

    def do(self, job):
        if not callable(job):
            copies.append(threading.current_thread().name)
            if len(copies) == 2:  # the second COPY of citizens gets a row the server refuses
                job = [(sql, text + "x,y\n" if '"citizen"' in sql.split("(")[0] else text) for sql, text in job]
        return real_do(self, job)

    monkeypatch.setattr(citizen_import._CopyWriter, "_do", do)
    schema_before = citizen_schema()
    with pytest.raises(psycopg2.Error):
        import_citizens(path, Scope.everything(), batch_size=3)
    assert copies[:2] == ["copy-writer", "copy-writer"]
    assert Citizen.select().count() == 0 and Household.select().count() == 0 and AuditEvent.select().count() == 0
    assert citizen_schema() == schema_before
    monkeypatch.undo()
    assert import_citizens(path, Scope.everything(), batch_size=3).created == 10
    later = make_citizen(wards[0], full_name="Sau Đó")  # the sequence was set past the ids the load gave
    assert later.id > max(c.id for c in Citizen.select().where(Citizen.id != later.id))


def test_progress_is_reported_in_order_up_to_every_row(wards, tmp_path):
    path = write_csv(tmp_path / "progress.csv", mixed_rows(wards[0], wards[1]))
    calls = []

    def progress(done, force):
        calls.append((done, force, threading.current_thread().name))

    result = import_citizens(path, Scope.everything(), batch_size=2, progress=progress)
    assert [done for done, _f, _t in calls] == sorted(done for done, _f, _t in calls)
    assert calls[-1][:2] == (result.total, True) and len(calls) > 2
    # On PostgreSQL the bulk load reports from the thread that has the connection, until the end.
    expected = "copy-writer" if is_postgres() else threading.current_thread().name
    assert {name for _d, force, name in calls if not force} == {expected}


def test_the_search_index_merges_in_eights_during_an_import_and_as_before_after(wards, tmp_path, monkeypatch):
    if is_postgres():
        pytest.skip("SQLite's FTS5 setting")

    def automerge():
        return db.execute_sql("SELECT v FROM citizen_fts_config WHERE k = 'automerge'").fetchall()

    before, during = automerge(), []
    real_create = citizen_import._Importer._create

    def create(self, creates, households):
        during.append(automerge())
        return real_create(self, creates, households)

    monkeypatch.setattr(citizen_import._Importer, "_create", create)
    import_citizens(write_csv(tmp_path / "merge.csv", good_rows(wards[0])), Scope.everything())
    assert during == [[(8,)]] and automerge() in ([(4,)], before)
    db.execute_sql("INSERT INTO citizen_fts(citizen_fts, rank) VALUES ('automerge', 2)")
    import_citizens(write_csv(tmp_path / "merge2.csv", good_rows(wards[1])), Scope.everything())
    assert automerge() == [(2,)]  # a setting of the table's own is put back


def test_an_import_into_a_table_with_citizens_is_no_bulk_load(wards, tmp_path, monkeypatch):
    make_citizen(wards[1], full_name="Đã Có")
    monkeypatch.setattr(citizen_import.bulk_load, "drop_indexes", lambda model: pytest.fail("indexes dropped"))
    result = import_citizens(write_csv(tmp_path / "xa.csv", good_rows(wards[0])), Scope.everything())
    assert result.created == 3


def test_the_bulk_insert_stores_awkward_text_and_none_as_they_are(wards):
    # COPY's CSV format on PostgreSQL, executemany on SQLite: quotes, commas, tabs, line breaks,
    # backslashes and NULL come back exactly.
    now = datetime.datetime(2026, 12, 3, 8, 30, 15, 123456)
    awkward = 'Số 1, "ngõ" 2\ttổ 3\r\nkhu \\N 4\\'
    rows = [
        {"book_number": "HK,1", "ward": wards[0], "address": awkward, "created_at": now, "updated_at": now},
        {"book_number": '"HK2"', "ward": wards[1], "address": None, "created_at": now, "updated_at": now},
        {"book_number": "\\N", "ward": wards[0], "address": "\\", "created_at": now, "updated_at": now},
    ]
    citizen_import.bulk_insert(Household, citizen_import.HOUSEHOLD_FIELDS, rows)
    stored = {h.book_number: (h.ward_id, h.address, h.created_at) for h in Household.select()}
    assert stored == {
        "HK,1": (wards[0], awkward, now),
        '"HK2"': (wards[1], None, now),
        "\\N": (wards[0], "\\", now),
    }


def test_a_large_file_is_checked_in_a_second_process_with_the_same_outcome(wards, tmp_path, monkeypatch):
    # Files of CHECKER_MIN_BYTES and more are read and checked by a spawned process: the same rows
    # are made and the same rows rejected, with the same reasons in Vietnamese.
    import multiprocessing

    code = f"{wards[0]:05d}"
    rows = mixed_rows(wards[0], wards[1])
    rows += [
        ["Sai Số", "01/01/1990", "Nam", "12345", "", "", code, ""],
        ["Xã Lạ", "01/01/1990", "Nam", "", "", "", "99999", ""],
        ["Chưa Sinh", "01/01/2999", "Nữ", "", "", "", code, ""],
    ]
    path = write_csv(tmp_path / "big.csv", rows)
    started = []
    real_init = citizen_import._Checker.__init__
    monkeypatch.setattr(citizen_import._Checker, "__init__", lambda self, *a: started.append(1) or real_init(self, *a))
    monkeypatch.setattr(citizen_import, "CHECKER_MIN_BYTES", 0)
    checked_apart = import_snapshot(import_citizens(path, Scope.everything(), batch_size=3))
    assert started == [1] and not multiprocessing.active_children()
    assert checked_apart[0] == "created=6 updated=0 unchanged=0 rejected=5"
    assert checked_apart[4][2][:2] == (10, "phone")
    assert checked_apart[4][2][2].startswith("Nhập số di động Việt Nam"), checked_apart[4]  # rendered in Vietnamese
    DuplicateCandidate.delete().execute()
    Citizen.delete().execute()
    Household.delete().execute()
    monkeypatch.setattr(citizen_import, "CHECKER_MIN_BYTES", 1 << 40)
    assert import_snapshot(import_citizens(path, Scope.everything(), batch_size=3)) == checked_apart
    assert started == [1]


def test_a_failed_import_stops_its_checking_process(wards, tmp_path, monkeypatch):
    import multiprocessing

    rows = [VI_HEADERS] + [[f"Người {n}", "01/01/1980", "Nam", "", "", f"{wards[0]:05d}", ""] for n in range(10)]
    monkeypatch.setattr(citizen_import, "CHECKER_MIN_BYTES", 0)
    monkeypatch.setattr(citizen_import._Importer, "_create", lambda self, creates, households: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        import_citizens(write_csv(tmp_path / "crash.csv", rows), Scope.everything(), batch_size=2)
    assert not multiprocessing.active_children() and Citizen.select().count() == 0


def test_checked_rows_cross_between_the_processes_unchanged(wards):
    # The checking process sends its rows pickled: fields, dates, and reasons as lazy strings.
    keys = ["full_name", "date_of_birth", None, "ward_code"]
    rows = [
        (2, ["Nguyễn Văn An", "25/12/1990", "", f"{wards[0]:05d}"]),
        (4, ["Trần Bình", "31/02/1990", "", f"{wards[0]:05d}"]),
        (5, ["Excel", datetime.datetime(1990, 1, 2), None, wards[0]]),
    ]
    checked = list(citizen_import.checked_rows(rows, keys, set(wards)))
    crossed = pickle.loads(pickle.dumps(checked))
    assert [number for number, _cells, _outcome in crossed] == [2, 4, 5]
    for (_n, values, outcome), (_m, cells, crossed_outcome) in zip(checked, crossed, strict=True):
        assert cells == values
        if isinstance(outcome, FieldError):
            with force_locale("vi"):
                assert (crossed_outcome.field, str(crossed_outcome.message)) == (outcome.field, str(outcome.message))
                assert str(crossed_outcome.message).startswith("Nhập ngày")  # rendered in Vietnamese
        else:
            assert crossed_outcome == outcome


def test_the_importers_random_source_gives_uniform_unpredictable_codes():
    rng = citizen_import.BufferedSystemRandom()
    rng.BUFFER = 64  # refilled from os.urandom every few numbers
    numbers = [rng.randrange(10**9) for _ in range(3000)]
    assert all(0 <= n < 10**9 for n in numbers) and len(set(numbers)) == 3000
    digits = [rng.randrange(10) for _ in range(20000)]
    assert all(1700 < digits.count(d) < 2300 for d in range(10))  # about 2,000 each (4.7 sigma either way)
    assert 0.45 < sum(rng.random() for _ in range(10000)) / 10000 < 0.55
    assert rng.getrandbits(1) in (0, 1) and 0 <= rng.getrandbits(200) < 2**200
    with pytest.raises(NotImplementedError):
        rng.getstate()
    other = citizen_import.BufferedSystemRandom()
    assert [other.randrange(10**9) for _ in range(5)] != numbers[:5]  # seeded by nobody
