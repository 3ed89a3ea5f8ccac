"""Shared fixtures: a migrated SQLite database per test, and households files written from row lists."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from actions import crypto
from actions.db.migrate import upgrade
from actions.db.session import make_engine, make_sessionmaker
from actions.services.household_import import HEADERS
from actions.services.idcard import check_digit

# The tests' HELPLINE_DATA_KEY: made once per run, never a real key.
TEST_DATA_KEY = crypto.new_secret()


@pytest.fixture(autouse=True)
def data_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test encrypts with a known key from the environment, never with the key file under var/."""
    monkeypatch.setenv("HELPLINE_DATA_KEY", TEST_DATA_KEY)
    crypto.configure(None)
    yield TEST_DATA_KEY
    crypto.configure(None)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'helpline.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Migrated with the real Alembic migrations, not create_all."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker:
    return make_sessionmaker(engine)


Cell = str | int | float | None


def make_id_number(birth: str = "19800101", sequence: int = 1, region: str = "370399") -> str:
    """A valid 身份证号 in a region code that no real county has (370399 or 370499)."""
    first17 = f"{region}{birth}{sequence:03d}"
    return first17 + check_digit(first17)


# People the insurance tests register: 建档立卡 in 淄博, ordinary in 淄博, and a household in 枣庄.
POOR_ID = make_id_number("19500714", 4)
ORDINARY_ID = make_id_number("19501010", 9)
ZAOZHUANG_ID = make_id_number("19720624", 15, region="370499")


@dataclass
class HouseholdFiles:
    """Builds households rows (valid unless overridden) and writes them as CSV or XLSX under `directory`."""

    directory: Path
    _sequence: int = 0

    id_number = staticmethod(make_id_number)

    def row(self, **cells: Cell) -> list[Cell]:
        """A valid row with a fresh 身份证号; keyword arguments override cells by header, e.g. 姓名=""."""
        unknown = set(cells) - set(HEADERS)
        if unknown:
            raise KeyError(f"not a header: {sorted(unknown)}")
        self._sequence += 1
        defaults: dict[str, Cell] = {
            "户编号": "T-0001",
            "姓名": f"测试{self._sequence}",
            "身份证号": make_id_number(sequence=self._sequence),
            "手机": "",
            "市": "淄博市",
            "区县": "淄川区",
            "乡镇": "太河镇",
            "村": "测试村",
            "家庭人口": "1",
            "类别": "脱贫户",
            "是否建档立卡": "是",
        }
        defaults.update(cells)
        return [defaults[h] for h in HEADERS]

    def csv(
        self,
        rows: Sequence[Sequence[Cell]],
        name: str = "households.csv",
        encoding: str = "utf-8",
        header: Sequence[str] = HEADERS,
    ) -> Path:
        path = self.directory / name
        with path.open("w", encoding=encoding, newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    def xlsx(
        self, rows: Sequence[Sequence[Cell]], name: str = "households.xlsx", header: Sequence[str] = HEADERS
    ) -> Path:
        """Cells are written with their Python type: a str stays text, an int becomes a numeric cell."""
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
        path = self.directory / name
        workbook.save(path)
        return path


@pytest.fixture
def household_files(tmp_path: Path) -> HouseholdFiles:
    return HouseholdFiles(tmp_path)
