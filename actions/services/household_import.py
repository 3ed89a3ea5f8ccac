"""Import households and their members from CSV (UTF-8 or GBK) or XLSX with Chinese headers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.db.models import HOUSEHOLD_STATUSES, Household, Person
from actions.db.types import id_number_digest
from actions.services.idcard import normalize_phone, validate_id_number
from actions.services.regions import get_or_create_region

HEADERS = ("户编号", "姓名", "身份证号", "手机", "市", "区县", "乡镇", "村", "家庭人口", "类别", "是否建档立卡")
OPTIONAL = frozenset({"手机"})
MAX_LENGTH = {"户编号": 32, "姓名": 64, "市": 64, "区县": 64, "乡镇": 64, "村": 64}
_SMALL_NUMBER = re.compile(r"[0-9]{1,3}")
TRUE_VALUES = frozenset({"是", "y", "yes", "true", "1", "√"})
FALSE_VALUES = frozenset({"否", "n", "no", "false", "0", "×"})


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, headers)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class RowError:
    """Why one row was refused. `row` counts as a spreadsheet does: the header is row 1."""

    row: int
    code: str
    field: str = ""
    detail: str = ""


@dataclass(frozen=True)
class MemberRow:
    row: int
    household_code: str
    name: str
    id_number: str
    phone: str | None
    region: tuple[str, str, str, str]
    size: int
    status: str
    registered_poor: bool
    birth_date: dt.date | None


@dataclass
class ImportReport:
    rows_read: int = 0
    errors: list[RowError] = field(default_factory=list)
    households_created: int = 0
    households_updated: int = 0
    persons_created: int = 0
    persons_updated: int = 0
    unchanged: int = 0
    committed: bool = False

    @property
    def rows_valid(self) -> int:
        return self.rows_read - len({e.row for e in self.errors})


def read_table(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows as {header: text}, numbered as in a spreadsheet; blank rows are skipped."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        header, rows = _read_xlsx(path)
    elif suffix in (".csv", ".txt"):
        header, rows = _read_csv(path)
    else:
        raise ImportFileError("format", suffix or path.name)
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [h for h in HEADERS if h not in header]
    if missing:
        raise ImportFileError("headers", "、".join(missing))
    index = {h: header.index(h) for h in HEADERS}
    table = []
    for number, values in rows:
        if not any(v.strip() for v in values):
            continue
        padded = values + [""] * (len(header) - len(values))
        table.append((number, {h: padded[i].strip() for h, i in index.items()}))
    return table


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError("encoding")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("empty") from None
    return header, [(number, row) for number, row in enumerate(reader, start=2)]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Excel keeps 15 significant digits: an 18-digit 身份证号 typed as a number is already damaged.
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def _read_xlsx(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise ImportFileError("xlsx", type(exc).__name__) from None
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        try:
            header = [_cell_text(v) for v in next(rows)]
        except StopIteration:
            raise ImportFileError("empty") from None
        body = []
        for number, values in enumerate(rows, start=2):
            texts = [_cell_text(v) for v in values]
            for i, value in enumerate(values):
                if isinstance(value, int | float) and i < len(header) and header[i].strip() == "身份证号":
                    texts[i] = "#number#" + texts[i]
            body.append((number, texts))
        return header, body
    finally:
        workbook.close()


def parse_rows(table: list[tuple[int, dict[str, str]]]) -> tuple[list[MemberRow], list[RowError]]:
    """Validate every row; a household's rows must agree on its fields."""
    members: list[MemberRow] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    households: dict[str, MemberRow] = {}
    for number, cells in table:
        error = _row_error(number, cells)
        if error is not None:
            errors.append(error)
            continue
        member = _member(number, cells)
        if member.id_number in seen_ids:
            errors.append(RowError(number, "duplicate_id", "身份证号", str(seen_ids[member.id_number])))
            continue
        first = households.get(member.household_code)
        if first is not None:
            conflict = _household_conflict(first, member)
            if conflict:
                errors.append(RowError(number, "household_conflict", conflict, str(first.row)))
                continue
        else:
            households[member.household_code] = member
        seen_ids[member.id_number] = number
        members.append(member)
    return members, errors


def _row_error(number: int, cells: dict[str, str]) -> RowError | None:
    for header in HEADERS:
        if header not in OPTIONAL and not cells[header]:
            return RowError(number, "missing", header)
        if header in MAX_LENGTH and len(cells[header]) > MAX_LENGTH[header]:
            return RowError(number, "too_long", header, str(MAX_LENGTH[header]))
    if cells["身份证号"].startswith("#number#"):
        return RowError(number, "id_as_number", "身份证号")
    check = validate_id_number(cells["身份证号"])
    if not check.ok:
        assert check.problem is not None
        return RowError(number, "id_number", "身份证号", check.problem.value)
    if cells["手机"] and normalize_phone(cells["手机"]) is None:
        return RowError(number, "phone", "手机")
    if not _SMALL_NUMBER.fullmatch(cells["家庭人口"]) or not 1 <= int(cells["家庭人口"]) <= 30:
        return RowError(number, "size", "家庭人口", cells["家庭人口"])
    if cells["类别"] not in HOUSEHOLD_STATUSES:
        return RowError(number, "status", "类别", cells["类别"])
    if cells["是否建档立卡"].lower() not in TRUE_VALUES | FALSE_VALUES:
        return RowError(number, "flag", "是否建档立卡", cells["是否建档立卡"])
    return None


def _member(number: int, cells: dict[str, str]) -> MemberRow:
    check = validate_id_number(cells["身份证号"])
    assert check.normalized is not None
    return MemberRow(
        row=number,
        household_code=cells["户编号"],
        name=cells["姓名"],
        id_number=check.normalized,
        phone=normalize_phone(cells["手机"]) if cells["手机"] else None,
        region=(cells["市"], cells["区县"], cells["乡镇"], cells["村"]),
        size=int(cells["家庭人口"]),
        status=cells["类别"],
        registered_poor=cells["是否建档立卡"].lower() in TRUE_VALUES,
        birth_date=check.birth_date,
    )


def _household_conflict(first: MemberRow, other: MemberRow) -> str:
    for header, attribute in (("市/区县/乡镇/村", "region"), ("家庭人口", "size"), ("类别", "status")):
        if getattr(first, attribute) != getattr(other, attribute):
            return header
    if first.registered_poor != other.registered_poor:
        return "是否建档立卡"
    return ""


def apply_members(session: Session, members: list[MemberRow], report: ImportReport, synthetic: bool = False) -> None:
    """Upsert households by 户编号 and persons by 身份证号; unchanged rows stay untouched."""
    households: dict[str, Household] = {}
    for member in members:
        household = households.get(member.household_code)
        if household is None:
            household = _upsert_household(session, member, report, synthetic)
            households[member.household_code] = household
        _upsert_person(session, household, member, report)


def _update(row: Any, wanted: dict[str, Any]) -> bool:
    """Set the wanted values; whether anything changed."""
    changed = {key: value for key, value in wanted.items() if getattr(row, key) != value}
    for key, value in changed.items():
        setattr(row, key, value)
    return bool(changed)


def _upsert_household(session: Session, member: MemberRow, report: ImportReport, synthetic: bool) -> Household:
    region = get_or_create_region(session, list(member.region))
    household = session.execute(select(Household).where(Household.code == member.household_code)).scalar_one_or_none()
    wanted = {
        "region_id": region.id,
        "size": member.size,
        "status": member.status,
        "is_registered_poor": member.registered_poor,
    }
    if household is None:
        household = Household(code=member.household_code, is_synthetic=synthetic, **wanted)
        session.add(household)
        session.flush()
        report.households_created += 1
    elif _update(household, wanted):
        report.households_updated += 1
    return household


def _upsert_person(session: Session, household: Household, member: MemberRow, report: ImportReport) -> None:
    person = session.execute(
        select(Person).where(Person.id_number_hash == id_number_digest(member.id_number))
    ).scalar_one_or_none()
    wanted = {
        "household_id": household.id,
        "name": member.name,
        "phone": member.phone,
        "birth_date": member.birth_date,
    }
    if person is None:
        session.add(Person(id_number=member.id_number, **wanted))
        report.persons_created += 1
    elif _update(person, wanted):
        report.persons_updated += 1
    else:
        report.unchanged += 1
    session.flush()


def import_households(
    sessions: Any, path: Path, *, skip_invalid: bool = False, synthetic: bool = False
) -> ImportReport:
    """Read, validate and import a file in one transaction: all good rows, or nothing when any row is bad."""
    table = read_table(path)
    members, errors = parse_rows(table)
    report = ImportReport(rows_read=len(table), errors=errors)
    if errors and not skip_invalid:
        return report
    with sessions.begin() as session:
        apply_members(session, members, report, synthetic=synthetic)
    report.committed = True
    return report
