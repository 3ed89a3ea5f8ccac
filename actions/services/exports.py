"""The monitoring list of a jurisdiction as XLSX or CSV: the household import's Chinese columns, then the case's.

One row per member of each household in monitoring (纳入监测, 即时帮扶), so the file goes back through
`helpline import households` unchanged. A declarant the register does not know is one row of a household numbered
by the case (户编号 = 申报编号), with the household size they gave. CSV is UTF-8 with a byte-order mark, so Excel
opens it with the Chinese intact. The 身份证号 is written as text: Excel would round an 18-digit number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from actions.db.models import HOUSEHOLD_STATUSES, HardshipCase, HelpMeasure, Household, Region
from actions.services.household_import import HEADERS
from actions.services.workspace import MONITORING_STATUSES, Officer, audit, case_scope

CASE_HEADERS = ("申报编号", "申报状态", "监测类别", "风险", "是否紧急", "致困原因", "申报日期", "ABCD分类", "帮扶措施")
COLUMNS = HEADERS + CASE_HEADERS
FORMATS = ("xlsx", "csv")


def _measures(case: HardshipCase, measures: Sequence[HelpMeasure]) -> str:
    def one(m: HelpMeasure) -> str:
        return m.kind + (f" {Decimal(m.amount).normalize():f}元" if m.amount is not None else "")

    return ";".join(one(m) for m in measures if m.case_id == case.id)


def monitoring_rows(session: Session, officer: Officer) -> list[list[str]]:
    """The rows of the jurisdiction's monitoring list, in COLUMNS order."""
    cases = (
        session.execute(
            select(HardshipCase)
            .where(and_(case_scope(officer), HardshipCase.status.in_(MONITORING_STATUSES)))
            .order_by(HardshipCase.case_no)
            .options(joinedload(HardshipCase.region))
        )
        .scalars()
        .all()
    )
    households = {
        h.id: h
        for h in session.execute(
            select(Household)
            .where(Household.id.in_([c.household_id for c in cases if c.household_id is not None]))
            .options(joinedload(Household.region), selectinload(Household.members))
        )
        .unique()
        .scalars()
    }
    measures = (
        session.execute(
            select(HelpMeasure).where(HelpMeasure.case_id.in_([c.id for c in cases])).order_by(HelpMeasure.id)
        )
        .scalars()
        .all()
    )
    rows: list[list[str]] = []
    for case in cases:
        household = households.get(case.household_id) if case.household_id is not None else None
        case_cells = [
            case.case_no,
            case.status,
            case.category or "",
            case.risk or "",
            "是" if case.urgent else "否",
            case.cause or "",
            case.created_at.date().isoformat(),
            (household.abcd_class or "") if household else "",
            _measures(case, measures),
        ]
        if household is not None:
            place = _place(household.region)
            for person in household.members:
                rows.append(
                    [household.code, person.name, person.id_number, person.phone or "", *place,
                     str(household.size or len(household.members)), household.status,
                     "是" if household.is_registered_poor else "否", *case_cells]
                )  # fmt: skip
        else:
            status = case.category if case.category in HOUSEHOLD_STATUSES else "一般农户"
            rows.append(
                [case.case_no, case.name or "", case.id_number or "", case.phone or "", *_place(case.region),
                 str(case.household_size or 1), status or "一般农户", "否", *case_cells]
            )  # fmt: skip
    audit(session, officer, "export", "region", officer.jurisdiction, f"监测名单 {len(rows)} 行")
    return rows


def _place(region: Region | None) -> list[str]:
    parts = region.path.split("/") if region is not None else []
    return (parts + [""] * 4)[:4]


def to_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[list[str]], title: str = "监测名单") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append(row)
    for line in sheet.iter_rows(min_row=2):
        for cell in line:  # everything stays text: 身份证号, 户编号 with leading zeros
            cell.data_type = TYPE_STRING
            cell.number_format = "@"
    for column, header in zip(sheet.columns, COLUMNS, strict=True):
        width = max([len(header) * 2] + [len(str(c.value or "")) for c in column])
        sheet.column_dimensions[column[0].column_letter].width = min(40, width + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export(session: Session, officer: Officer, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(fmt)
    rows = monitoring_rows(session, officer)
    return to_xlsx(rows) if fmt == "xlsx" else to_csv(rows)
