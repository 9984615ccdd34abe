"""Citizen import from the paper-form spreadsheet (.xlsx or .csv): check every row, upsert, explain rejects.

The file is read as a stream and written in batches inside one transaction: a failure part-way
leaves nothing behind. A row matches an existing citizen by health code, else by ID number, else
(neither given) by name, date of birth and commune, so that importing the same file twice
changes nothing. Blank cells never erase what a record already holds.
"""

import array
import codecs
import contextlib
import csv
import dataclasses
import datetime
import functools
import io
import itertools
import multiprocessing
import operator
import os
import pickle
import queue as queue_module
import random
import re
import threading
import unicodedata
import zipfile
from pathlib import Path

import numpy
from flask import has_app_context
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl import load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from peewee import DateField
from peewee import DateTimeField

from migrations.m0001_initial import SQLITE_SEARCH
from models.audit import Action
from models.audit import AuditEvent
from models.base import any_of
from models.base import db
from models.base import is_postgres
from models.base import pairs_in
from models.base import quoted
from models.base import utcnow
from models.citizens import FTS_DEFAULT_AUTOMERGE
from models.citizens import FTS_TABLE
from models.citizens import Citizen
from models.citizens import Household
from models.citizens import set_search_automerge
from models.duplicates import CitizenAlias
from models.places import Ward
from models.text import fold
from models.text import fold_name
from models.validation import FieldError
from models.validation import new_health_code
from models.validation import normalize_gender
from models.validation import normalize_health_code
from models.validation import parse_date
from services import bulk_load
from services.duplicates import find_duplicates_of
from services.duplicates import queue_pairs_among
from services.jobs import handler

# (key, the header on the paper form); both are accepted, ignoring case, diacritics and spacing.
COLUMNS = (
    ("full_name", "Họ và tên"),
    ("date_of_birth", "Ngày sinh"),
    ("gender", "Giới tính"),
    ("phone", "Số điện thoại"),
    ("national_id", "Số CMND/CCCD"),
    ("insurance_number", "Số thẻ BHYT"),
    ("health_code", "Mã Y tế cá nhân"),
    ("ward_code", "Mã xã/phường"),
    ("address", "Địa chỉ"),
    ("occupation", "Nghề nghiệp"),
    ("ethnicity", "Dân tộc"),
    ("email", "Email"),
    ("household_number", "Số hộ khẩu"),
)
KEYS = tuple(key for key, _header in COLUMNS)
VIETNAMESE_HEADERS = dict(COLUMNS)
REQUIRED = ("full_name", "ward_code")
REJECT_HEADERS = ("Dòng", "Cột", "Lý do")
# Citizen fields set from a column of the same name; the others are mapped below.
PLAIN_FIELDS = (
    "full_name",
    "date_of_birth",
    "gender",
    "phone",
    "national_id",
    "insurance_number",
    "health_code",
    "occupation",
    "ethnicity",
    "email",
)
# The model's field names for the template's columns that differ.
FIELD_OF_COLUMN = {"ward_code": "ward", "address": "permanent_address", "household_number": "household"}
COLUMN_OF_FIELD = {field: column for column, field in FIELD_OF_COLUMN.items()}
# Stored fields an import may set; household is handled through household_number.
IMPORTED_FIELDS = (*PLAIN_FIELDS, "ward", "permanent_address")
BATCH_SIZE = 2000
MAX_HEALTH_CODE_ATTEMPTS = 5
CSV_PROBE_BYTES = 1 << 20
PORTAL_CODE_LENGTH = 12  # the codes new_health_code() issues: 12 digits


def _header_key(text):
    """A header folded for matching: no case, diacritics, spaces or punctuation."""
    return fold(text).replace(" ", "")


HEADER_ALIASES = {_header_key(key): key for key in KEYS} | {_header_key(header): key for key, header in COLUMNS}
HEADER_ALIASES |= {
    _header_key(alias): key
    for alias, key in (
        ("Số CCCD", "national_id"),
        ("Số CMND", "national_id"),
        ("CCCD", "national_id"),
        ("Mã y tế", "health_code"),
        ("Mã xã", "ward_code"),
        ("Mã phường", "ward_code"),
        ("Số sổ hộ khẩu", "household_number"),
        ("Điện thoại", "phone"),
    )
}


class ImportFileError(Exception):
    """The file as a whole cannot be imported; message is a lazy string for people."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return str(self.message)

    @property
    def user_message(self):
        return str(self.message)


@dataclasses.dataclass
class Rejected:
    """One rejected row: its number in the file, the column at fault (as headed there) and why."""

    row: int
    column: str
    reason: str
    values: list


@dataclasses.dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list = dataclasses.field(default_factory=list)
    rejected_path: Path | None = None
    dry_run: bool = False
    checker_peak_rss_mb: float | None = None  # of the process that checked a large file's rows
    # The ids as 8-byte integers: a million of them as Python ints would take 36 MB.
    created_ids: array.array = dataclasses.field(default_factory=lambda: array.array("q"))
    updated_ids: array.array = dataclasses.field(default_factory=lambda: array.array("q"))

    @property
    def total(self):
        return self.created + self.updated + self.unchanged + len(self.rejected)

    def counts_line(self):
        return f"created={self.created} updated={self.updated} unchanged={self.unchanged} rejected={len(self.rejected)}"


SEEN_KINDS = ("health_code", "national_id", "person")  # in the order of row_keys()


class SeenKeys:
    """Keys seen in a file, as 64-bit hashes, with the row where each was seen first: 16 bytes a key.

    A million rows' health codes, ID numbers and person keys in Python dicts of ints take several
    hundred megabytes; here they are sorted NumPy arrays, merged as they grow (like an LSM tree), and
    looked up a batch at a time. Two values of one file sharing a hash (about 1 in 10**7 at a million
    rows) would only give a false "duplicate of row N", which names the row.
    """

    FLUSH = 100_000

    def __init__(self):
        self.runs = []  # (sorted hashes, their rows), each run at least twice the size of the next

    def __len__(self):
        return sum(len(hashes) for hashes, _rows in self.runs)

    def first_rows(self, keys):
        """For each key (a hash, or None): the row it was first seen on, or None."""
        result = [None] * len(keys)
        wanted = [(i, key) for i, key in enumerate(keys) if key is not None]
        if not wanted or not self.runs:
            return result
        positions = numpy.fromiter((i for i, _key in wanted), dtype=numpy.int64, count=len(wanted))
        query = numpy.fromiter((key for _i, key in wanted), dtype=numpy.int64, count=len(wanted))
        for hashes, rows in self.runs:
            at = numpy.searchsorted(hashes, query).clip(max=len(hashes) - 1)
            hits = numpy.flatnonzero(hashes[at] == query)
            for hit in hits.tolist():
                result[int(positions[hit])] = int(rows[at[hit]])
        return result

    def add(self, first_rows):
        """Note {hash: row} of keys not seen before."""
        if not first_rows:
            return
        hashes = numpy.fromiter(first_rows.keys(), dtype=numpy.int64, count=len(first_rows))
        rows = numpy.fromiter(first_rows.values(), dtype=numpy.int64, count=len(first_rows))
        order = numpy.argsort(hashes)
        self.runs.append((hashes[order], rows[order]))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (h1, r1), (h2, r2) = self.runs.pop(), self.runs.pop()
            hashes, rows = numpy.concatenate((h2, h1)), numpy.concatenate((r2, r1))
            order = numpy.argsort(hashes, kind="stable")
            self.runs.append((hashes[order], rows[order]))


# Reading


@dataclasses.dataclass
class Table:
    """The header cells as written, their keys, and an iterator of (row number, cell values)."""

    headers: list
    keys: list
    rows: object


def open_table(path):
    """Read the header of an .xlsx or .csv file and return a Table; ImportFileError says what is wrong."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise ImportFileError(_l("The file is empty (0 bytes)."))
    rows = _source_rows(path)
    numbered = ((number, values) for number, values in enumerate(rows, start=1) if _has_content(values))
    first = next(numbered, None)
    if first is None:
        raise ImportFileError(_l("The file is empty: it has no header row and no data."))
    _header_row, header_values = first
    headers = [_cell_text(value) for value in header_values]
    while headers and not headers[-1]:
        headers.pop()
    keys = _header_keys(headers)
    first_row = next(numbered, None)
    if first_row is None:
        raise ImportFileError(_l("The file has a header row but no citizens under it."))
    return Table(headers=headers, keys=keys, rows=itertools.chain([first_row], numbered))


def _source_rows(path):
    """Every row of the file's first sheet, or of the CSV, as a list of cell values."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    raise ImportFileError(_l("Upload an Excel (.xlsx) or CSV (.csv) file."))


def file_health_codes(path, keys):
    """The file's health codes that the portal could have issued (12 digits), as SeenKeys of hash().

    Codes the portal issues avoid them; no other code can be one the portal issues.
    """
    if "health_code" not in keys:
        return SeenKeys()
    path, index = Path(path), keys.index("health_code")
    if path.suffix.lower() == ".csv":
        # pandas is imported here, not at the top: the checking process imports this module and
        # has no use for pandas' thirty megabytes.
        from pandas.errors import ParserError

        try:
            return _portal_codes(_csv_column(path, index))
        except ParserError:  # pandas reads no further (a quote left open): the csv module does
            pass
    return _portal_codes(values[index] if len(values) > index else None for values in _source_rows(path))


def _portal_codes(cells):
    codes, hashes = SeenKeys(), {}
    for value in cells:
        if value is None:
            continue
        if not (isinstance(value, str) and value.isdigit()):  # spaces, a number cell, a longer code
            try:
                value = normalize_health_code(_number_text(value))
            except FieldError:
                continue
        if value and len(value) == PORTAL_CODE_LENGTH and value.isascii() and value.isdigit():
            hashes[hash(value)] = 0
            if len(hashes) >= SeenKeys.FLUSH:
                codes.add(hashes)
                hashes = {}
    codes.add(hashes)
    return codes


def _csv_column(path, index):
    """One column's cells of a CSV file's rows, header included (None where a row is shorter).

    Read by pandas' C parser, which splits the rows as the csv module does and turns only this
    column into strings: a million rows in 1.1 s against 1.8 s.
    """
    import pandas  # see file_health_codes

    encoding = csv_encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        delimiter = _csv_delimiter(handle)
    chunks = pandas.read_csv(
        path,
        sep=delimiter,
        header=None,
        usecols=[index],
        dtype=object,
        na_filter=False,
        encoding=encoding,
        engine="c",
        chunksize=100_000,
    )
    with chunks:
        for chunk in chunks:
            yield from (value if isinstance(value, str) else None for value in chunk[index].tolist())


def _has_content(values):
    try:
        return bool("".join(values).strip())  # a CSV row: all text, joined in one call
    except TypeError:  # a workbook's row: numbers, dates and None among the text
        return any(value is not None and str(value).strip() for value in values)


def _cell_text(value):
    return "" if value is None else str(value).strip()


def _header_keys(headers):
    keys, unknown = [], []
    for header in headers:
        key = HEADER_ALIASES.get(_header_key(header)) if header else None
        if header and key is None:
            unknown.append(header)
        keys.append(key)
    if unknown:
        raise ImportFileError(
            _l(
                "Unknown column(s) in the header row: %(names)s. Use the headers of the import template.",
                names=", ".join(f"“{name}”" for name in unknown),
            )
        )
    seen = set()
    for header, key in zip(headers, keys, strict=True):
        if key in seen:
            raise ImportFileError(_l("The column “%(name)s” appears twice in the header row.", name=header))
        if key:
            seen.add(key)
    missing = [VIETNAMESE_HEADERS[key] for key in REQUIRED if key not in seen]
    if missing:
        raise ImportFileError(
            _l(
                "The header row lacks the required column(s) %(names)s; is the first row the header of the template?",
                names=", ".join(f"“{name}”" for name in missing),
            )
        )
    return keys


def _xlsx_rows(path):
    with path.open("rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise ImportFileError(_l("The file is not an Excel workbook (.xlsx), although its name ends in .xlsx."))
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, IndexError) as exc:
        raise ImportFileError(
            _l("The file is not an Excel workbook (.xlsx), although its name ends in .xlsx.")
        ) from exc
    return _closing_rows(workbook, rows)


def _closing_rows(workbook, rows):
    try:
        yield from rows
    finally:
        workbook.close()


def csv_encoding(path):
    """utf-8-sig when the whole file decodes as UTF-8, else Windows-1258 (CSV saved by older Excel)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with Path(path).open("rb") as handle:
        try:
            while chunk := handle.read(CSV_PROBE_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1258"
    return "utf-8-sig"


def _csv_delimiter(handle):
    """ ";" when the first line has more semicolons than commas (Excel in a Vietnamese locale), else ","."""
    sample = handle.readline()
    handle.seek(0)
    return ";" if sample.count(";") > sample.count(",") else ","


def _csv_rows(path):
    encoding = csv_encoding(path)
    with path.open(encoding=encoding, newline="") as handle:
        delimiter = _csv_delimiter(handle)
        if encoding == "utf-8-sig":
            yield from csv.reader(handle, delimiter=delimiter)
            return
        # Windows-1258 writes tone marks as combining characters: compose them as typed on the web.
        for values in csv.reader(handle, delimiter=delimiter):
            yield [unicodedata.normalize("NFC", value) for value in values]


# Checking one row


def _number_text(value, pad_to=()):
    """A cell Excel may have turned into a number (losing leading zeros) back as digits."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        for width in pad_to:
            if len(text) == width - 1:
                return "0" + text
        return text
    return value


# NUL and the other C0 controls but tab and line breaks: no database column should hold them
# (PostgreSQL refuses NUL), and a paper form never had them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _ward_code(value):
    text = _cell_text(_number_text(value))
    if not text:
        raise FieldError("ward", _l("The commune or ward code is required."))
    if not text.isdigit():
        raise FieldError("ward", _l("The commune or ward code is a number, such as 06652."))
    return int(text)


def clean_row(values, keys, ward_codes):
    """Return (citizen fields, household book number) of one row, or raise FieldError naming the column."""
    cells = dict(zip(keys, values, strict=False))  # a short row lacks its last cells
    cells.pop(None, None)  # a column the template does not name
    try:
        joined = "".join(values)  # a CSV row: all text, searched at once
    except TypeError:  # a workbook's row: numbers, dates and None among the text
        joined = None
    if joined is None or _CONTROL.search(joined):  # the first named cell that holds one, in the file's column order
        for key, value in cells.items():
            if isinstance(value, str) and _CONTROL.search(value):
                raise FieldError(key, _l("The cell holds control characters (a damaged file?): retype it."))
    if joined is None:  # numbers Excel made of digits: back to the digits
        cells["phone"] = _number_text(cells.get("phone"), pad_to=(10,))
        cells["national_id"] = _number_text(cells.get("national_id"), pad_to=(9, 12))
        cells["health_code"] = _number_text(cells.get("health_code"))
        cells["household_number"] = _number_text(cells.get("household_number"))
    ward = _WARD_CODES[cells.get("ward_code")]
    if ward not in ward_codes:
        raise FieldError("ward", _l("There is no commune or ward with the code %(code)s.", code=f"{ward:05d}"))
    fields = {name: cells.get(name) for name in PLAIN_FIELDS}
    # Cells a file repeats, parsed once: Citizen.clean() then takes the parsed value as given.
    fields["date_of_birth"] = _DATES[fields["date_of_birth"]]
    fields["gender"] = _GENDERS[fields["gender"]]
    fields["occupation"] = _WORDS[fields["occupation"]]
    fields["ethnicity"] = _WORDS[fields["ethnicity"]]
    fields["permanent_address"] = _words(cells.get("address"))
    citizen = CheckedRow(ward, fields)
    citizen.clean()
    book = _cell_text(cells.get("household_number")) or None
    if book and len(book) > 32:
        raise FieldError("household", _l("A household book number has at most 32 characters."))
    checked = citizen.__dict__
    fields = {name: checked[name] for name in CHECKED_FIELDS}
    fields["ward"] = ward
    return fields, book


def _words(value):
    """A cell's words separated by single spaces, or None when it has none."""
    return " ".join(_cell_text(value).split()) or None


class _Remembered(dict):
    """function(cell) for cells that repeat down a file (a commune's code, a birth date, a gender),
    each distinct text worked out once; at most LIMIT of them are kept. Only text is kept: a
    workbook's True would find what its 1 gave."""

    LIMIT = 1 << 16

    def __init__(self, function):
        super().__init__()
        self.function = function

    def __missing__(self, cell):
        value = self.function(cell)
        if type(cell) is str and len(self) < self.LIMIT:
            self[cell] = value
        return value


def _or_as_is(function):
    """function(cell), or the cell as it is where function refuses it: Citizen.clean() refuses it
    again, after the fields it checks first, so that a row's error is the one it always was."""

    def parsed(cell):
        try:
            return function(cell)
        except FieldError:
            return cell

    return parsed


# Each result is one Citizen.clean() accepts and keeps as it is (a date, "M" or "F", words).
_DATES = _Remembered(_or_as_is(parse_date))
_GENDERS = _Remembered(_or_as_is(normalize_gender))
_WORDS = _Remembered(_words)
_WARD_CODES = _Remembered(_ward_code)  # a refused code raises every time: it is not remembered


CHECKED_FIELDS = (*PLAIN_FIELDS, "permanent_address", "search_text")


def checked_rows(rows, keys, ward_codes):
    """(row number, cell values, outcome) of each numbered row: (fields, book number, row_keys()), or the FieldError."""
    for number, values in rows:
        values = list(values)
        try:
            fields, book = clean_row(values, keys, ward_codes)
        except FieldError as exc:
            yield number, values, exc
            continue
        yield number, values, (fields, book, row_keys(fields))


# The keys row_keys() gives, in order: the first three find repeats within a file (SEEN_KINDS).
KEY_HEALTH_CODE, KEY_NATIONAL_ID, KEY_PERSON, KEY_NAME_DOB_PHONE = range(4)


def row_keys(fields):
    """hash() of a checked row's health code, ID number, (folded name, birth date, commune) and
    (folded name, birth date, phone); None where the row has no such key.

    The last two are how the duplicate search (services.duplicates) pairs records. Hashes are only
    compared with hashes made by the same process: Python salts them per process.
    """
    code, national_id, born = fields["health_code"], fields["national_id"], fields["date_of_birth"]
    if born is None:
        return (None if code is None else hash(code), None if national_id is None else hash(national_id), None, None)
    name = fold_name(fields["full_name"])
    phone = fields["phone"]
    return (
        None if code is None else hash(code),
        None if national_id is None else hash(national_id),
        hash((name, born, fields["ward"])),
        None if phone is None else hash((name, born, phone)),
    )


# A file this large (about 25,000 rows of the template) is checked in a second process.
CHECKER_MIN_BYTES = 4 << 20
CHECKED_CHUNK = 2000


class _Checker:
    """A file's checked rows (as checked_rows() yields them), read and checked by a spawned process.

    Checking a row costs about as much as everything else the import does with it; on two cores the
    two overlap. The process is spawned, not forked: the import may run in a threaded web server.
    Reasons travel as lazy strings and are rendered here, in the importer's locale. The process
    works up to `ahead` chunks ahead: meanwhile the importer reads the file's health codes first.
    """

    def __init__(self, path, keys, ward_codes, ahead=32):
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue(maxsize=ahead)
        arguments = (str(path), list(keys), set(ward_codes), self.queue)
        self.process = context.Process(target=_check_file, args=arguments, daemon=True)
        self.process.start()
        self.peak_rss_mb = None

    def __iter__(self):
        try:
            while True:
                item = self._next()
                if isinstance(item, dict):  # the end, with the process's peak memory
                    self.peak_rss_mb = item["peak_rss_mb"]
                    return
                if isinstance(item, str):
                    raise RuntimeError(f"Checking the file's rows failed: {item}")
                yield from pickle.loads(item)
        finally:
            self.close()

    def _next(self):
        while True:
            try:
                return self.queue.get(timeout=1)
            except queue_module.Empty:
                if not self.process.is_alive():
                    raise RuntimeError("The process checking the file's rows stopped.") from None

    def close(self):
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


def _check_file(path, keys, ward_codes, queue):
    """In the spawned process: put the checked rows on the queue a chunk at a time, then its peak memory."""
    try:
        table = open_table(path)
        rows = checked_rows(table.rows, keys, ward_codes)
        # A CSV row's cells are read again should the importer reject the row (few are): thirteen
        # strings a row were a third of the importer's cost of receiving it.
        again = Path(path).suffix.lower() == ".csv"
        while chunk := list(itertools.islice(rows, CHECKED_CHUNK)):
            if again:
                chunk = [(n, None, outcome) if type(outcome) is tuple else (n, v, outcome) for n, v, outcome in chunk]
            # Pickled here, not by the queue's thread when the pipe has room: a chunk waiting in the
            # queue then takes its pickle's size (0.7 MB), not its objects' (several times that).
            queue.put(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        queue.put({"peak_rss_mb": _peak_rss_mb()})
    except Exception as exc:  # the importer raises it: the child's own traceback would be lost
        queue.put(repr(exc))


def _read_rejected_cells(path, rejected):
    """Fill in the cells of the rejected rows the checking process sent without them, from the file."""
    wanted = {item.row: item for item in rejected if item.values is None}
    if not wanted:
        return
    for number, values in enumerate(_source_rows(Path(path)), start=1):
        item = wanted.pop(number, None)
        if item is not None:
            item.values = list(values)
            if not wanted:
                return


class _RejectedCells(threading.Thread):
    """_read_rejected_cells() in a thread of its own, started when the last batch is written.

    Building the indexes and committing is the database's work, done without Python's lock, and
    the checking process has ended: a million rows were read again on the idle core (1.7 s).
    """

    def __init__(self, path, rejected):
        super().__init__(name="rejected-cells", daemon=True)
        self.path = path
        self.rejected = rejected
        self.error = None
        self.start()

    def run(self):
        try:
            _read_rejected_cells(self.path, self.rejected)
        except BaseException as exc:  # raised by wait(), in the importer's thread
            self.error = exc

    def wait(self):
        self.join()
        if self.error is not None:
            raise self.error


def _peak_rss_mb():
    """This process's peak resident memory in MB (VmHWM), or None where /proc has no such line."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


class BufferedSystemRandom(random.Random):
    """secrets.SystemRandom's source, the kernel's (os.urandom), read 64 KB at a time.

    SystemRandom makes a system call for every number: for the half-million health codes a large
    import issues that was most of the time spent issuing them. The numbers are as unpredictable.
    """

    BUFFER = 1 << 16

    def __init__(self):
        self._buffer, self._position = b"", 0
        super().__init__()

    def seed(self, *args, **kwargs):
        """Nothing to seed: the kernel's source needs none."""

    def getrandbits(self, k):
        size = (k + 7) // 8
        if self._position + size > len(self._buffer):
            self._buffer, self._position = os.urandom(max(self.BUFFER, size)), 0
        chunk = self._buffer[self._position : self._position + size]
        self._position += size
        return int.from_bytes(chunk, "little") >> (size * 8 - k)

    def random(self):
        return self.getrandbits(53) * 2.0**-53

    def getstate(self):
        raise NotImplementedError("a system source has no state")

    setstate = getstate


class CheckedRow:
    """One row's citizen fields, normalised and checked by Citizen's own clean(), without a model.

    Building a peewee model (its defaults, its field descriptors) cost a quarter of a row's checks;
    clean() and build_search_text() only read and set plain attributes. A test holds the two to the
    same fields and the same errors.
    """

    clean = Citizen.clean
    build_search_text = Citizen.build_search_text

    def __init__(self, ward, fields):
        self.__dict__.update(fields)
        self.ward_id = ward
        self.old_national_id = None
        self.temporary_address = None


# The import


class _Importer:
    def __init__(self, table, scope, actor, source, file_name, dry_run, batch_size, progress):
        self.table = table
        self.scope = scope
        self.actor = actor
        self.source = source
        self.file_name = file_name
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.progress = progress
        self.result = ImportResult(dry_run=dry_run)
        self.ward_codes = {code for (code,) in Ward.select(Ward.code).tuples()}
        self.ward_provinces = dict(Ward.select(Ward.code, Ward.province).tuples())
        self.column_index = {key: index for index, key in enumerate(table.keys) if key}
        # Each identifier seen in the file, with the row it was first seen on.
        # hash(value) -> the row where it first appeared. A million rows' codes, ID numbers and
        # person keys are kept as 64-bit hashes, not strings and tuples (a third of the memory);
        # two values of one file sharing a hash (about 1 in 10**7 at a million rows) would only
        # give a false "duplicate of row N", which names the row.
        self.seen = {kind: SeenKeys() for kind in SEEN_KINDS}
        self.rng = BufferedSystemRandom()
        self.batch_number = 0
        self.file_codes = SeenKeys()
        self.search_index_deferred = False
        # Loading an empty table (see _bulk_load): no existing record to match, ids given here.
        self.bulk = False
        self.ids = None
        self.pair_keys = None
        self.household_ids = None  # book number -> id, when the household table is bulk loaded too
        self.household_block = None
        self.writer = None  # a _CopyWriter while a bulk load on PostgreSQL sends its COPYs from a thread
        self.deferred_events = []  # the batches' audit events meanwhile
        self.analyze_at = _planner_rows() if is_postgres() else None

    def header_of(self, field):
        """The header as written in the file for a model field or a template key."""
        key = COLUMN_OF_FIELD.get(field, field)
        index = self.column_index.get(key)
        if index is not None:
            return self.table.headers[index]
        return VIETNAMESE_HEADERS.get(key, key)

    def reject(self, number, values, field, reason):
        self.result.rejected.append(
            Rejected(number, self.header_of(field), str(reason), None if values is None else list(values))
        )

    def run(self, checked=None):
        """Import the table's rows; checked: the rows already checked (a _Checker), else checked here."""
        batch, done = [], 0
        if checked is None:
            checked = checked_rows(self.table.rows, self.table.keys, self.ward_codes)
        for number, values, outcome in checked:
            if isinstance(outcome, FieldError):
                self.reject(number, values, outcome.field, outcome.message)
                continue
            fields, book, keys = outcome
            if not self.scope.covers(fields["ward"]):
                self.reject(number, values, "ward", _l("This commune or ward is outside your jurisdiction."))
                continue
            batch.append((number, values, fields, book, keys))
            if len(batch) >= self.batch_size:
                done += self._process(self._without_repeats(batch))
                batch = []
                self._report(done)
        if batch:
            done += self._process(self._without_repeats(batch))
        if self.writer is not None:
            self.writer.drain()
        for event in self.deferred_events:
            AuditEvent.record(**event)
        self._report(done, force=True)
        self._audit_summary()
        return self.result

    def _report(self, done, force=False):
        if self.progress is None:
            return
        if self.writer is not None and not force:
            # The writer's thread has the connection, and the progress may be stored in the database.
            self.writer.call(functools.partial(self.progress, done + len(self.result.rejected), force))
            return
        self.progress(done + len(self.result.rejected), force)

    def _without_repeats(self, batch):
        """The batch without the rows that repeat an earlier row of the file (each rejected, naming it)."""
        earlier = {
            kind: self.seen[kind].first_rows([row[4][index] for row in batch]) for index, kind in enumerate(SEEN_KINDS)
        }
        found = {kind: {} for kind in SEEN_KINDS}  # hash -> first row, for this batch's keys
        kept = []
        for position, row in enumerate(batch):
            if self._repeats(row, position, earlier, found) is None:
                kept.append(row)
        for kind in SEEN_KINDS:
            self.seen[kind].add(found[kind])
        return kept

    def _repeats(self, row, position, earlier, found):
        """None for a row seen first here (its keys noted in found), else the earlier row it repeats."""
        number, values, fields, _book, keys = row

        def first_row(kind):
            key = keys[SEEN_KINDS.index(kind)]
            first = earlier[kind][position] or found[kind].get(key)
            if first is None:
                found[kind][key] = number
            return first

        for name in ("health_code", "national_id"):
            if fields[name] is None:
                continue
            first = first_row(name)
            if first is not None:
                self.reject(number, values, name, _l("Duplicate of row %(row)s: the same value is there.", row=first))
                return first
        has_codes = fields["health_code"] is not None or fields["national_id"] is not None
        if fields["date_of_birth"] is None:
            if has_codes:
                return None
            self.reject(
                number,
                values,
                "date_of_birth",
                _l(
                    "Without a health code or an ID number, the date of birth is needed to recognise "
                    "the person when the file is imported again."
                ),
            )
            return number
        first = first_row("person")
        if first is None or has_codes:
            # A row with codes notes its person, so that a later row without codes is not taken for
            # this person: it would update the record this row makes (or not, by where the batches end).
            return None
        self.reject(
            number,
            values,
            "full_name",
            _l("Duplicate of row %(row)s: same name, date of birth and commune.", row=first),
        )
        return first

    # One batch: bulk reads, then the writes.
    def _process(self, batch):
        self.batch_number += 1
        existing = self._existing(batch)
        creates, updates = [], []
        if self.bulk:  # nothing existed to match: every row is a new citizen
            creates = [(fields, book, keys) for _number, _values, fields, book, keys in batch]
        for number, values, fields, book, keys in [] if self.bulk else batch:
            match = self._match(number, values, fields, existing)
            if match is False:
                continue
            if match is None:
                creates.append((fields, book, keys))
                continue
            changes = {
                name: fields[name]
                for name in IMPORTED_FIELDS
                if fields[name] is not None
                and fields[name] != match[name]
                and (name, fields[name]) not in existing["aliases"]  # an old code stays old
            }
            if book is not None:
                changes["household"] = book
            if book is not None and existing["households"].get(book) == match["household"]:
                del changes["household"]
            if changes:
                updates.append((match, changes))
            else:
                self.result.unchanged += 1
        households = self._households(batch, existing["households"])
        created_ids, created_rows = self._create(creates, households)
        if not self.bulk:  # a bulk load searches the whole table once, at its end
            self._refresh_statistics()
            find_duplicates_of(created_ids, created_rows)  # one batched search for the batch's new citizens
        updated_ids = self._update(updates, households)
        self.result.created += len(creates)
        self.result.updated += len(updates)
        if not self.dry_run and (created_ids or updated_ids):
            event = {
                "action": Action.CREATE,
                "actor": self.actor,
                "object_type": "citizen_import",
                "source": self.source,
                "file": self.file_name,
                "batch": self.batch_number,
                "created_ids": created_ids,
                "updated_ids": updated_ids,
            }
            if self.writer is not None:
                self.deferred_events.append(event)  # recorded when the writer is done, in order
            else:
                AuditEvent.record(**event)
        return len(batch)

    def _existing(self, batch):
        if self.bulk:
            return self._nothing_existing(batch)
        codes = {f["health_code"] for _n, _v, f, _b, _k in batch if f["health_code"]}
        ids = {f["national_id"] for _n, _v, f, _b, _k in batch if f["national_id"]}
        people = [f for _n, _v, f, _b, _k in batch if not f["health_code"] and not f["national_id"]]
        columns = [Citizen.id, *(getattr(Citizen, name) for name in IMPORTED_FIELDS), Citizen.household]
        by_code, by_id, by_person = {}, {}, {}
        if codes:
            for row in Citizen.select(*columns).where(any_of(Citizen.health_code, sorted(codes))).dicts():
                by_code[row["health_code"]] = row
        if ids:
            for row in Citizen.select(*columns).where(any_of(Citizen.national_id, sorted(ids))).dicts():
                by_id.setdefault(row["national_id"], row)
        # A merged record's old health code or ID number names the record it was merged into.
        owners = {
            kind: CitizenAlias.owners(kind, [value for value in wanted if value not in found])
            for kind, wanted, found in (("health_code", codes, by_code), ("national_id", ids, by_id))
        }
        survivors = sorted({citizen_id for found in owners.values() for citizen_id in found.values()})
        if survivors:
            rows = {row["id"]: row for row in Citizen.select(*columns).where(any_of(Citizen.id, survivors)).dicts()}
            for kind, found in (("health_code", by_code), ("national_id", by_id)):
                for value, citizen_id in owners[kind].items():
                    found[value] = rows[citizen_id]
        if people:
            # The exact (birth date, commune) pairs of the batch: any birth date with any commune
            # would read more and more unrelated citizens as the table grows.
            pairs = sorted({(f["date_of_birth"], f["ward"]) for f in people if f["date_of_birth"]})
            # "national_id IS NULL" is tested here, not in SQL: SQLite would answer it from the ID number's
            # index, reading every citizen without one (a quarter of a province) at every batch.
            query = Citizen.select(*columns).where(pairs_in(Citizen.date_of_birth, Citizen.ward, pairs))
            for row in query.dicts():
                if row["national_id"] is None:
                    by_person.setdefault(_person_key(row), row)
        households = self._known_households(batch)
        aliases = {(kind, value) for kind, found in owners.items() for value in found}
        return {
            "health_code": by_code,
            "national_id": by_id,
            "person": by_person,
            "households": households,
            "aliases": aliases,
        }

    def _nothing_existing(self, batch):
        """_existing() for a bulk load: the table held no citizen, so no alias either; households may exist."""
        return {
            "health_code": {},
            "national_id": {},
            "person": {},
            "households": self._known_households(batch),
            "aliases": set(),
        }

    def _known_households(self, batch):
        books = sorted({b for _n, _v, _f, b, _k in batch if b})
        if self.household_ids is not None or not books:  # households too are bulk loaded: none before
            return {}
        query = Household.select(Household.book_number, Household.id).where(any_of(Household.book_number, books))
        return dict(query.tuples())

    def _match(self, number, values, fields, existing):
        """The existing row this one updates, None for a new citizen, or False when the row is rejected."""
        code, national_id = fields["health_code"], fields["national_id"]
        by_code = existing["health_code"].get(code) if code else None
        by_id = existing["national_id"].get(national_id) if national_id else None
        if by_code is not None and by_id is not None and by_code["id"] != by_id["id"]:
            self.reject(
                number,
                values,
                "national_id",
                _l("This ID number is on another record (health code %(code)s).", code=by_id["health_code"]),
            )
            return False
        if by_code is None and by_id is not None and code and by_id["health_code"] not in (None, code):
            self.reject(
                number,
                values,
                "health_code",
                _l(
                    "The ID number belongs to the record with health code %(code)s, not this one.",
                    code=by_id["health_code"],
                ),
            )
            return False
        match = by_code or by_id
        if match is None and not code and not national_id:
            match = existing["person"].get(_person_key(fields))
        if match is not None and not self.scope.covers(match["ward"]):
            self.reject(number, values, "ward", _l("The record to update is outside your jurisdiction."))
            return False
        return match

    def _refresh_statistics(self):
        """On PostgreSQL, ANALYZE the tables whenever the import has doubled them.

        Autovacuum cannot see rows before the import commits: planning on the empty table's
        statistics, the batches' lookups would scan the whole table, more of it at every batch.
        """
        if self.analyze_at is None or self.dry_run or self.result.created < self.analyze_at:
            return
        # The columns the batches look citizens up by: the long search text is not sampled.
        db.execute_sql(f"ANALYZE citizen ({', '.join(ANALYZED_COLUMNS)})")
        db.execute_sql("ANALYZE household")
        self.analyze_at = 2 * self.analyze_at

    def _households(self, batch, known):
        """Book number -> household id, creating the missing households (in the row's commune)."""
        # In a bulk load into an empty household table, every household is one this import made.
        households = dict(known) if self.household_ids is None else self.household_ids
        missing = {}
        now = _timestamp_text(utcnow())
        for _n, _v, fields, book, _k in batch:
            if book and book not in households and book not in missing:
                missing[book] = {
                    "book_number": book,
                    "ward": fields["ward"],
                    "address": fields["permanent_address"],
                    "created_at": now,
                    "updated_at": now,
                }
        if missing and not self.dry_run and self.household_ids is not None:
            rows = list(missing.values())
            for row, household_id in zip(rows, self.household_block.take(len(rows)), strict=True):
                row["id"] = households[row["book_number"]] = household_id
            bulk_insert(Household, ("id", *HOUSEHOLD_FIELDS), rows, self.writer)
        elif missing and not self.dry_run:
            bulk_insert(Household, HOUSEHOLD_FIELDS, list(missing.values()))
            query = Household.select(Household.book_number, Household.id).where(
                any_of(Household.book_number, list(missing))
            )
            households |= dict(query.tuples())
        return households

    def _issue_health_codes(self, rows):
        """Give every row without a health code a new one, unique in the file and the database."""
        pending = [row for row in rows if not row["health_code"]]
        taken = set()  # codes in the table, and those given in this batch by earlier attempts
        for _attempt in range(MAX_HEALTH_CODE_ATTEMPTS):
            if not pending:
                return
            for row in pending:
                row["health_code"] = new_health_code(self.ward_provinces[row["ward"]], self.rng)
            codes = [row["health_code"] for row in pending]
            if not self.bulk:  # a bulk load began on an empty table: its own codes are all in file_codes
                query = Citizen.select(Citizen.health_code).where(any_of(Citizen.health_code, codes))
                taken.update(code for (code,) in query.tuples())
            in_file = self.file_codes.first_rows([hash(code) for code in codes])
            clashes, issued = [], {}
            for row, file_row in zip(pending, in_file, strict=True):
                code = row["health_code"]
                if code in taken or file_row is not None:
                    clashes.append(row)
                else:
                    taken.add(code)  # not issued twice in this batch; later batches find it in the table
                    issued[hash(code)] = 0
            if self.bulk:  # ... or, in a bulk load, among the file's codes
                self.file_codes.add(issued)
            pending = clashes
        raise FieldError("health_code", _l("Could not issue a unique health code; please try again."))

    def _create(self, creates, households):
        """Insert the new citizens; return their ids and their (id, name, birth date, phone, ward, ID, code)."""
        if self.dry_run or not creates:
            return [], []
        now = _timestamp_text(utcnow())
        rows = []
        for fields, book, _keys in creates:
            row = fields  # completed in place: the row's fields are not read again
            row["household"] = households.get(book) if book else None
            row["created_at"] = row["updated_at"] = now
            rows.append(row)
        issued = [row for row in rows if not row["health_code"]]
        self._issue_health_codes(rows)
        for row in issued:
            # The rest of the search text is already folded; word order does not matter to the search.
            row["search_text"] = f"{row['search_text']} {fold(row['health_code'])}".strip()
        if self.bulk:
            # The table's indexes are dropped: the ids are given here rather than looked up by code.
            for row, citizen_id in zip(rows, self.ids.take(len(rows)), strict=True):
                row["id"] = citizen_id
            bulk_insert(Citizen, ("id", *INSERTED_FIELDS), rows, self.writer)
            self.pair_keys.note(rows, creates)
        else:
            insert_citizens(rows)
            codes = [row["health_code"] for row in rows]
            query = Citizen.select(Citizen.health_code, Citizen.id).where(any_of(Citizen.health_code, codes))
            id_of = dict(query.tuples())
            for row in rows:
                row["id"] = id_of[row["health_code"]]
        if self.search_index_deferred:
            index_citizen_rows(rows)
        ids = sorted(row["id"] for row in rows)
        self.result.created_ids.extend(ids)
        if self.bulk:  # the duplicate search runs once at the end, on the keys in pair_keys
            return ids, []
        keys = ("id", "full_name", "date_of_birth", "phone", "ward", "national_id", "health_code")
        return ids, [tuple(row[key] for key in keys) for row in rows]

    def _update(self, updates, households):
        if self.dry_run or not updates:
            return []
        ids = []
        for match, changes in updates:
            changes = dict(changes)
            if "household" in changes:
                changes["household"] = households.get(changes["household"])
            citizen = Citizen(**{**{k: v for k, v in match.items() if k != "id"}, **changes})
            citizen.id = match["id"]
            Citizen.update(**changes, search_text=citizen.build_search_text(), updated_at=utcnow()).where(
                Citizen.id == match["id"]
            ).execute()
            ids.append(match["id"])
        self.result.updated_ids.extend(ids)
        return ids

    def _audit_summary(self):
        if self.dry_run:
            return
        AuditEvent.record(
            Action.CREATE,
            actor=self.actor,
            object_type="citizen_import",
            object_id=self.file_name[:64],
            source=self.source,
            file=self.file_name,
            created=self.result.created,
            updated=self.result.updated,
            unchanged=self.result.unchanged,
            rejected=len(self.result.rejected),
        )


def _planner_rows():
    """How many rows PostgreSQL's planner believes the citizen table has (at least a batch)."""
    (rows,) = db.execute_sql("SELECT reltuples FROM pg_class WHERE oid = 'citizen'::regclass").fetchone()
    return max(int(rows), BATCH_SIZE)


INSERTED_FIELDS = (*IMPORTED_FIELDS, "household", "search_text", "created_at", "updated_at")
ANALYZED_COLUMNS = ("id", "health_code", "national_id", "phone", "date_of_birth", "ward_id", "household_id")
HOUSEHOLD_FIELDS = ("book_number", "ward", "address", "created_at", "updated_at")


def insert_citizens(rows):
    """Insert citizen rows (dicts of INSERTED_FIELDS) in few statements, without building one query object a row."""
    bulk_insert(Citizen, INSERTED_FIELDS, rows)


def bulk_insert(model, names, rows, writer=None):
    """Insert rows (dicts with these field names) in one statement: COPY on PostgreSQL, executemany on SQLite.

    peewee's insert_many composes a node per value, which costs more than the database's own work.
    Dates and timestamps are passed as the text peewee writes and reads back. On PostgreSQL a
    _CopyWriter may take the COPY, to send it later from its own thread.
    """
    fields = [model._meta.fields[name] for name in names]
    table, columns = quoted(model), quoted(model, *fields)
    if is_postgres():
        # COPY: several times faster than multi-row INSERTs, the GIN search index included. Its CSV
        # format is written by the csv module, in C: a Python call per value cost more than the COPY.
        # A blank cell there is NULL: callers pass None, never an empty string (blank cells are None).
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(map(operator.itemgetter(*names), rows))
        statement = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)"
        if writer is not None:
            writer.copy(statement, buffer.getvalue(), len(rows))
            return
        buffer.seek(0)
        with db.cursor() as cursor:
            cursor.copy_expert(statement, buffer)
        return
    # Only the date and timestamp columns are converted, each distinct value once (a batch's
    # timestamps are one value, its birth dates a few thousand): column by column, in C but for that.
    dates = [i for i, field in enumerate(fields) if isinstance(field, (DateField, DateTimeField))]
    values = list(map(operator.itemgetter(*names), rows))
    if dates and values:
        by_column = list(zip(*values, strict=True))
        for position in dates:
            text_of = {value: _sqlite_value(value) for value in set(by_column[position])}
            by_column[position] = map(text_of.__getitem__, by_column[position])
        values = list(zip(*by_column, strict=True))
    placeholders = ", ".join("?" for _field in fields)
    db.cursor().executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", values)


# SQLite's search index is filled by a trigger, one FTS5 insert per row: six times what one
# INSERT … SELECT of a batch's rows costs. An import holds the write lock for its whole transaction,
# so no other connection inserts citizens meanwhile; the trigger is dropped and restored inside that
# transaction (SQLite's DDL is transactional: a rollback restores it too).
SQLITE_INSERT_TRIGGER = next(t for t in SQLITE_SEARCH if "TRIGGER IF NOT EXISTS citizen_fts_insert" in t)


# While an import fills the search index, FTS5 merges its segments once 8 of a level have
# accumulated rather than 4 (its default): each batch's statements flush a segment, and merging
# them in fours was a quarter of the fill (a million citizens: 14.1 s of merging and filling
# against 11.2 s; docs/BENCHMARKS.md). The setting is the table's own and is put back at the end.
IMPORT_FTS_AUTOMERGE = 8


@contextlib.contextmanager
def _search_index_deferred(importer):
    """On SQLite, the importer indexes each batch itself; on PostgreSQL the GIN index needs no help."""
    if is_postgres() or importer.dry_run:
        yield
        return
    db.execute_sql("DROP TRIGGER IF EXISTS citizen_fts_insert")
    importer.search_index_deferred = True
    (automerge,) = db.execute_sql(f"SELECT max(v) FROM {FTS_TABLE}_config WHERE k = 'automerge'").fetchone()
    set_search_automerge(IMPORT_FTS_AUTOMERGE)
    try:
        yield
    finally:
        importer.search_index_deferred = False
        set_search_automerge(FTS_DEFAULT_AUTOMERGE if automerge is None else automerge)
        db.execute_sql(SQLITE_INSERT_TRIGGER)


@contextlib.contextmanager
def _bulk_load(importer):
    """Into an empty citizen table, load with its B-tree indexes dropped and build them once at the end.

    Row by row, a million citizens' nine B-tree indexes and two foreign keys took most of the
    database's time; built once they take a fraction of it (docs/BENCHMARKS.md). On SQLite the
    search index is filled batch by batch from the rows in hand (index_citizen_rows); PostgreSQL's
    GIN search index stays (bulk_load says why). With no citizen
    before the import there is nothing to match a row with, so the batches skip those lookups, and
    the likely duplicates among the new citizens are found from their keys at the end. An empty
    household table is loaded the same way. Any failure rolls the transaction back, indexes included.
    """
    if importer.dry_run or not bulk_load.lock_if_empty(Citizen):
        yield
        return
    dropped = [bulk_load.drop_indexes(Citizen)]
    importer.bulk = True
    importer.ids = bulk_load.IdBlock(Citizen)
    importer.pair_keys = PairKeys()
    if bulk_load.lock_if_empty(Household):
        dropped.append(bulk_load.drop_indexes(Household))
        importer.household_ids = {}
        importer.household_block = bulk_load.IdBlock(Household)
    if is_postgres() and importer.household_ids is not None:  # the batches then make no statement of their own
        importer.writer = _CopyWriter(db.connection())
    try:
        yield
    finally:
        if importer.writer is not None:  # on a failure, its COPY under way ends before the rollback
            importer.writer.close()
            importer.writer = None
    for block in (importer.ids, importer.household_block):
        if block is not None:
            block.close()
    importer.bulk = False
    # What the batches needed is let go before the indexes are built: tens of megabytes at a million rows.
    importer.household_ids = importer.seen = importer.file_codes = None
    for each in dropped:
        bulk_load.restore_indexes(each)
    if is_postgres():
        db.execute_sql(f"ANALYZE {quoted(Citizen)}")
        db.execute_sql(f"ANALYZE {quoted(Household)}")
    queue_pairs_among(importer.pair_keys.candidates())


class PairKeys:
    """The duplicate search's keys of the citizens a bulk load made, as hashes, with their ids.

    The table held no citizen before, so every likely pair is among these. Citizens sharing a key
    hash are the candidates; the search then compares their records themselves, so a shared hash
    that is not a shared key (one in 10**7 at a million rows) pairs nobody. Two records with one
    ID number cannot both be made: the second row repeats the first and is rejected.
    """

    def __init__(self):
        self.parts = {KEY_PERSON: [], KEY_NAME_DOB_PHONE: []}  # key -> [(hashes, ids)] a batch each

    def note(self, rows, creates):
        """rows: the inserted citizens (with their ids); creates: their (fields, book, keys), in order."""
        ids = numpy.fromiter((row["id"] for row in rows), dtype=numpy.int64, count=len(rows))
        for key, parts in self.parts.items():
            hashes = [keys[key] for _f, _b, keys in creates]
            if None in hashes:  # a row without this key (no birth date, or no phone)
                given = numpy.fromiter((value is not None for value in hashes), dtype=bool, count=len(hashes))
                hashes, kept = [value for value in hashes if value is not None], ids[given]
            else:
                kept = ids
            if hashes:
                parts.append(numpy.stack([numpy.array(hashes, dtype=numpy.int64), kept]))

    def candidates(self):
        """Ids of the citizens that share a key hash with another, ascending."""
        found = []
        for parts in self.parts.values():
            if not parts:
                continue
            hashes, ids = numpy.concatenate(parts, axis=1)
            order = numpy.argsort(hashes, kind="stable")
            hashes, ids = hashes[order], ids[order]
            shared = hashes[1:] == hashes[:-1]
            in_group = numpy.zeros(len(hashes), dtype=bool)
            in_group[1:] |= shared
            in_group[:-1] |= shared
            found.append(ids[in_group])
        if not found:
            return []
        return numpy.unique(numpy.concatenate(found)).tolist()


class _CopyWriter:
    """A bulk load's COPYs on PostgreSQL, sent from a thread of their own on the import's connection.

    psycopg2 waits for the server without Python's lock: while the server stores some batches
    (its search index most of the work), the importer prepares the next ones, where it used to
    wait. Until drain() returns, only this thread uses the connection: the batches of a bulk load
    make no statement of their own (IdBlock counts the ids, their audit events wait for the end),
    and progress is reported from this thread, after the copies before it. Copies are gathered to
    COPY_ROWS rows: a COPY waits for Python's lock as it starts and ends, up to the importer's
    switch interval each time.
    """

    COPY_ROWS = 10_000
    QUEUED = 8

    def __init__(self, connection):
        self.connection = connection
        self.jobs = queue_module.Queue(maxsize=self.QUEUED)
        self.pending = {}  # COPY statement -> its CSV texts, in the order given
        self.pending_rows = 0
        self.error = None
        self.thread = threading.Thread(target=self._run, name="copy-writer", daemon=True)
        self.thread.start()

    def copy(self, statement, text, rows):
        """COPY the CSV text with this statement, later; raise an earlier COPY's failure."""
        self._raise()
        self.pending.setdefault(statement, []).append(text)
        self.pending_rows += rows
        if self.pending_rows >= self.COPY_ROWS:
            self._submit()

    def call(self, function):
        """Call function() in the writer's thread, after the copies submitted before it."""
        self._raise()
        self.jobs.put(function)

    def drain(self):
        """Wait until every copy is stored; raise the first failure."""
        self._submit()
        self.jobs.join()
        self._raise()

    def close(self):
        """Stop the thread once its work is done (on a failure, pending copies are dropped)."""
        self.pending = {}
        self.jobs.put(None)
        self.thread.join()

    def _submit(self):
        if self.pending:
            job = [(statement, "".join(texts)) for statement, texts in self.pending.items()]
            self.pending, self.pending_rows = {}, 0
            self.jobs.put(job)

    def _raise(self):
        if self.error is not None:
            raise self.error

    def _run(self):
        try:
            while (job := self.jobs.get()) is not None:
                try:
                    if self.error is None:
                        self._do(job)
                except BaseException as exc:  # raised in the importer's thread by its next call
                    self.error = exc
                finally:
                    self.jobs.task_done()
        finally:
            self.jobs.task_done()
            if not db.is_closed():  # a progress report's own connection (peewee's are per thread)
                db.close()

    def _do(self, job):
        if callable(job):
            job()
            return
        with self.connection.cursor() as cursor:
            for statement, text in job:
                # Read in one piece: each piece of the file is read under Python's lock.
                cursor.copy_expert(statement, io.StringIO(text), size=len(text) + 1)


def _timestamp_text(value):
    """A timestamp as both databases read it and as peewee writes it: converted once for a batch."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def index_citizen_rows(rows):
    """Add just-inserted citizen rows (dicts with id and search_text) to SQLite's search index.

    As the insert trigger would have, from the values in hand: a third cheaper than the same rows
    read back by INSERT ... SELECT, in one statement at the end or in one per batch (measured on
    200,000 citizens: 2.5 s against 3.3 and 4.1 s). Both import paths use it.
    """
    db.cursor().executemany(
        f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (?, ?)",
        [(row["id"], row["search_text"]) for row in rows],
    )


def _sqlite_value(value):
    if isinstance(value, datetime.datetime):
        return _timestamp_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _person_key(fields):
    """Name, date of birth and commune: how a row without identifiers is recognised again."""
    if fields.get("date_of_birth") is None:
        return None
    return (fold_name(fields["full_name"]), fields["date_of_birth"], fields["ward"])


class _DryRunRollback(Exception):
    """Raised to roll the dry run's transaction back."""


def import_citizens(
    path,
    scope,
    actor=None,
    dry_run=False,
    source="cli",
    file_name=None,
    rejected_path=None,
    batch_size=BATCH_SIZE,
    progress=None,
):
    """Import citizens from an .xlsx or .csv file; return an ImportResult.

    Raise ImportFileError when the file as a whole cannot be read. Rejected rows are written to
    rejected_path (default FILE-rejected.xlsx beside the file), dry run or not.
    progress(rows_done, force) is called after each batch.
    """
    path = Path(path)
    file_name = file_name or path.name
    with _vietnamese():
        try:
            table = open_table(path)
        except ImportFileError as exc:
            raise ImportFileError(str(exc.message)) from None  # in Vietnamese, with no request needed
        importer = _Importer(table, scope, actor, source, file_name, dry_run, batch_size, progress)
        checker = None
        if path.stat().st_size >= CHECKER_MIN_BYTES:
            checker = _Checker(path, table.keys, importer.ward_codes)
        try:
            if not dry_run:
                importer.file_codes = file_health_codes(path, table.keys)
            with db.atomic(), _search_index_deferred(importer), _bulk_load(importer):
                result = importer.run(checker)
                # Read while the indexes are built and the transaction commits.
                rejected_cells = _RejectedCells(path, result.rejected)
        finally:
            if checker is not None:
                checker.close()
        if checker is not None:
            result.checker_peak_rss_mb = checker.peak_rss_mb
        rejected_cells.wait()
        result.rejected.sort(key=lambda item: item.row)  # repeats are found a batch at a time
        if rejected_path is None:
            rejected_path = rejected_path_for(path)
        Path(rejected_path).unlink(missing_ok=True)
        if result.rejected:
            write_rejected(table.headers, result.rejected, rejected_path)
            result.rejected_path = Path(rejected_path)
    return result


def _vietnamese():
    """Reasons and files are in Vietnamese, as the paper form is."""
    if has_app_context():
        return force_locale("vi")
    return _NoLocale()


class _NoLocale:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def rejected_path_for(path):
    """FILE-rejected.xlsx beside FILE."""
    path = Path(path)
    return path.with_name(f"{path.stem}-rejected.xlsx")


def write_rejected(headers, rejected, output):
    """The rejected rows as they were, plus row, column and reason: fix them and import the file again."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Dòng bị từ chối")
    width = len(headers)
    sheet.append([*headers, *REJECT_HEADERS])
    for item in rejected:
        values = [_safe_cell(v) for v in (item.values + [None] * width)[:width]]
        sheet.append([*values, item.row, item.column, item.reason])
    workbook.save(output)
    return Path(output)


def _safe_cell(value):
    """Text that openpyxl would store as a formula gets a leading apostrophe.

    Only "=": other text is stored as a string cell, and "+84 912 345 678" must import again as typed.
    """
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)  # control characters cannot go in a workbook: marked
    if value.startswith("="):
        return "'" + value
    return value


def template_workbook():
    """The import template: the Vietnamese headers and one example row, as bytes."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Công dân"
    sheet.append([header for _key, header in COLUMNS])
    sheet.append(
        [
            "Nguyễn Văn An",
            "25/12/1990",
            "Nam",
            "0912345678",
            "022090001234",
            "DN4220123456789",
            "",
            "06652",
            "Số 1, tổ 2, khu 3, phường Hà Tu",
            "Công nhân",
            "Kinh",
            "",
            "06652000001",
        ]
    )
    for column in sheet.columns:
        sheet.column_dimensions[column[0].column_letter].width = 22
        for cell in column:
            cell.number_format = "@"  # text: Excel keeps the leading zeros
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# The background job of the back office's import page.


@handler("import_citizens")
def run_import_job(job, context):
    """Import an uploaded file for the account that asked; the result file holds the rejected rows."""
    from models.accounts import Staff

    params = job.arguments
    actor = Staff.get_by_id(params["actor_id"])
    scope = actor.scope()  # as it is now: a jurisdiction may have shrunk since the upload
    output = context.result_path(".xlsx")
    result = import_citizens(
        params["path"],
        scope,
        actor=actor,
        source="web",
        file_name=params["file_name"],
        rejected_path=output,
        progress=lambda done, force: context.progress(done, params.get("rows"), force),
    )
    name = f"{Path(params['file_name']).stem}-rejected.xlsx" if result.rejected_path else None
    Path(params["path"]).unlink(missing_ok=True)
    return (result.rejected_path, name, result.counts_line())
