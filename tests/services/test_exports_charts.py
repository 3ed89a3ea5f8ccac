"""The monitoring-list export (XLSX, CSV: read back, re-imported) and the statistics chart (a PNG that opens)."""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy.orm import sessionmaker

from actions.db.migrate import upgrade
from actions.db.session import make_engine, make_sessionmaker
from actions.services.cases import MONITORED, URGENT_HELP, VERIFYING
from actions.services.charts import _draw, cjk_font, statistics_png
from actions.services.exports import COLUMNS, export
from actions.services.household_import import import_households
from actions.services.workspace import move_case, statistics
from tests.services.test_workspace import TODAY, YIYUAN_ID, ZICHUAN_ID, cases, officer, outcome, world  # noqa: F401


@pytest.fixture
def monitored_world(world: sessionmaker, cases: dict[str, str]) -> sessionmaker:  # noqa: F811
    """The 淄川 case in monitoring, the 沂源 case in 即时帮扶 (by the 沂源 cadre)."""
    for chat, case_no, last in (("c-zichuan", cases["zichuan"], MONITORED), ("c-yiyuan", cases["yiyuan"], URGENT_HELP)):
        cadre = officer(world, chat)
        with world.begin() as session:
            move_case(session, cadre, case_no, VERIFYING, "核实", outcome)
            move_case(session, cadre, case_no, last, "属实", outcome)
    return world


def test_the_xlsx_export_holds_the_jurisdiction_only_and_reads_back(monitored_world: sessionmaker) -> None:
    zichuan = officer(monitored_world, "c-zichuan")
    with monitored_world.begin() as session:
        data = export(session, zichuan, "xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    rows = [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 2  # header + the one member of the 淄川 household
    record = dict(zip(COLUMNS, rows[1], strict=True))
    assert record["身份证号"] == ZICHUAN_ID and record["户编号"] == "ZC-1" and record["申报状态"] == MONITORED
    assert YIYUAN_ID not in str(rows)


def test_the_csv_export_opens_in_excel_and_reimports_cleanly(monitored_world: sessionmaker, tmp_path: Path) -> None:
    yiyuan = officer(monitored_world, "c-yiyuan")
    with monitored_world.begin() as session:
        data = export(session, yiyuan, "csv")
    assert data.startswith(b"\xef\xbb\xbf")  # a byte-order mark: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 2 and rows[1][2] == YIYUAN_ID
    for fmt in ("csv", "xlsx"):
        with monitored_world.begin() as session:
            file = tmp_path / f"export.{fmt}"
            file.write_bytes(export(session, yiyuan, fmt))
        engine = make_engine(f"sqlite:///{tmp_path / fmt}.db")
        upgrade(engine)
        report = import_households(make_sessionmaker(engine), file)
        engine.dispose()
        assert report.errors == [] and report.committed and report.persons_created == 1


def test_the_statistics_chart_is_a_png_with_chinese_drawn(monitored_world: sessionmaker) -> None:
    assert cjk_font() is not None, "no CJK font: `make install` installs fonts-wqy-microhei"
    zichuan = officer(monitored_world, "c-zichuan")
    with monitored_world.begin() as session:
        stats = statistics(session, zichuan, TODAY)
    _draw.cache_clear()  # drawn now, so that the warnings are seen
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = statistics_png(stats)
    assert not [w for w in caught if "missing from" in str(w.message)]  # matplotlib's warning for a box glyph
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.format == "PNG" and image.size[0] > 600


def test_the_same_figures_are_drawn_once(monitored_world: sessionmaker) -> None:
    zichuan = officer(monitored_world, "c-zichuan")
    with monitored_world.begin() as session:
        stats = statistics(session, zichuan, TODAY)
    _draw.cache_clear()
    first = statistics_png(stats)
    again = statistics_png(dataclasses.replace(stats, by_status=dict(stats.by_status)))
    changed = statistics_png(dataclasses.replace(stats, overdue=stats.overdue + 1))
    assert first == again and changed != first
    assert (_draw.cache_info().hits, _draw.cache_info().misses) == (1, 2)
