from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from actions.db.models import Cadre, ChatIdentity, Household, Person
from actions.db.types import id_number_digest
from actions.services.demo import DEMO_DIR, load_demo
from actions.services.household_import import (
    ImportFileError,
    RowError,
    import_households,
    read_table,
)
from actions.services.idcard import validate_id_number
from tests.conftest import Cell, HouseholdFiles


def counts(sessions: sessionmaker) -> tuple[int, int]:
    with sessions() as session:
        households = session.execute(select(func.count()).select_from(Household)).scalar_one()
        persons = session.execute(select(func.count()).select_from(Person)).scalar_one()
    return int(households), int(persons)


def person(sessions: sessionmaker, id_number: str) -> Person:
    with sessions() as session:
        return session.execute(select(Person).where(Person.id_number_hash == id_number_digest(id_number))).scalar_one()


def household_members(sessions: sessionmaker) -> dict[str, list[str]]:
    with sessions() as session:
        households = session.execute(select(Household).order_by(Household.code)).scalars()
        return {h.code: [p.name for p in h.members] for h in households}


def three_good_rows(files: HouseholdFiles) -> list[list[Cell]]:
    return [
        files.row(户编号="T-0001", 姓名="张三", 手机="+86 138 0013 8000", 家庭人口="2"),
        files.row(户编号="T-0001", 姓名="张小三", 家庭人口="2"),
        files.row(户编号="T-0002", 姓名="李四", 村="另一村", 类别="一般农户", 是否建档立卡="否"),
    ]


def test_good_csv_is_imported(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    path = household_files.csv(rows)

    report = import_households(sessions, path)

    assert report.errors == []
    assert report.committed is True
    assert (report.rows_read, report.rows_valid) == (3, 3)
    assert (report.households_created, report.households_updated) == (2, 0)
    assert (report.persons_created, report.persons_updated, report.unchanged) == (3, 0, 0)
    assert counts(sessions) == (2, 3)
    assert household_members(sessions) == {"T-0001": ["张三", "张小三"], "T-0002": ["李四"]}
    with sessions() as session:
        first, second = session.execute(select(Household).order_by(Household.code)).scalars()
        assert (first.is_registered_poor, first.size, first.status) == (True, 2, "脱贫户")
        assert (second.is_registered_poor, second.size, second.status) == (False, 1, "一般农户")
        assert first.region.path == "淄博市/淄川区/太河镇/测试村"
        assert second.region.path == "淄博市/淄川区/太河镇/另一村"
        assert first.region.parent_id == second.region.parent_id
        assert first.is_synthetic is False
    zhang = person(sessions, str(rows[0][2]))
    assert zhang.phone == "13800138000"
    assert zhang.birth_date == dt.date(1980, 1, 1)
    assert person(sessions, str(rows[1][2])).phone is None


def test_15_digit_and_lowercase_numbers_are_stored_normalised(
    sessions: sessionmaker, household_files: HouseholdFiles
) -> None:
    path = household_files.csv(
        [household_files.row(身份证号="370399800101001"), household_files.row(身份证号="37039919800101004x")]
    )

    report = import_households(sessions, path)

    assert report.committed is True
    assert person(sessions, "370399198001010015").birth_date == dt.date(1980, 1, 1)
    assert person(sessions, "37039919800101004X").name == "测试2"


def file_with_one_bad_id_number(files: HouseholdFiles) -> Path:
    bad = files.row(户编号="T-0003", 姓名="王五")
    bad[2] = str(bad[2])[:-1] + ("0" if str(bad[2])[-1] != "0" else "1")
    return files.csv([*three_good_rows(files)[:2], [], bad])


def test_one_bad_id_number_refuses_the_whole_file(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    report = import_households(sessions, file_with_one_bad_id_number(household_files))

    assert report.committed is False
    assert report.errors == [RowError(5, "id_number", "身份证号", "check_digit")]
    assert (report.rows_read, report.rows_valid) == (3, 2)
    assert (report.households_created, report.persons_created) == (0, 0)
    assert counts(sessions) == (0, 0)


def test_skip_invalid_imports_only_the_good_rows(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    report = import_households(sessions, file_with_one_bad_id_number(household_files), skip_invalid=True)

    assert report.committed is True
    assert [(e.row, e.code) for e in report.errors] == [(5, "id_number")]
    assert (report.households_created, report.persons_created) == (1, 2)
    assert household_members(sessions) == {"T-0001": ["张三", "张小三"]}


def test_importing_the_same_file_twice_changes_nothing(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    path = household_files.csv(three_good_rows(household_files))
    import_households(sessions, path)
    with sessions() as session:
        stamps_before = session.execute(select(Person.id, Person.updated_at).order_by(Person.id)).all()

    again = import_households(sessions, path)

    assert again.committed is True
    assert (again.households_created, again.households_updated) == (0, 0)
    assert (again.persons_created, again.persons_updated, again.unchanged) == (0, 0, 3)
    assert counts(sessions) == (2, 3)
    with sessions() as session:
        assert session.execute(select(Person.id, Person.updated_at).order_by(Person.id)).all() == stamps_before


def test_changed_phone_updates_one_person(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    import_households(sessions, household_files.csv(rows))
    rows[1][3] = "139 0000 1111"

    report = import_households(sessions, household_files.csv(rows, name="changed.csv"))

    assert report.committed is True
    assert (report.persons_created, report.persons_updated, report.unchanged) == (0, 1, 2)
    assert (report.households_created, report.households_updated) == (0, 0)
    assert person(sessions, str(rows[1][2])).phone == "13900001111"
    assert counts(sessions) == (2, 3)


def test_changed_household_size_updates_the_household(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    import_households(sessions, household_files.csv(rows))
    rows[2][8] = "3"

    report = import_households(sessions, household_files.csv(rows, name="changed.csv"))

    assert (report.households_created, report.households_updated) == (0, 1)
    with sessions() as session:
        assert session.execute(select(Household.size).where(Household.code == "T-0002")).scalar_one() == 3


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"], ids=["gbk", "utf-8-with-bom"])
def test_csv_encodings(sessions: sessionmaker, household_files: HouseholdFiles, encoding: str) -> None:
    path = household_files.csv(three_good_rows(household_files), encoding=encoding)

    report = import_households(sessions, path)

    assert report.errors == []
    assert report.committed is True
    assert household_members(sessions) == {"T-0001": ["张三", "张小三"], "T-0002": ["李四"]}
    with sessions() as session:
        assert session.execute(select(Household.status).where(Household.code == "T-0002")).scalar_one() == "一般农户"


def test_xlsx_with_id_numbers_as_text(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    rows[0][3] = 13800138000
    rows[0][8] = 2
    path = household_files.xlsx(rows)

    report = import_households(sessions, path)

    assert report.errors == []
    assert report.committed is True
    assert household_members(sessions) == {"T-0001": ["张三", "张小三"], "T-0002": ["李四"]}
    assert person(sessions, str(rows[0][2])).phone == "13800138000"


def test_xlsx_with_an_id_number_as_a_numeric_cell(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    rows[1][2] = int(household_files.id_number(sequence=99))

    report = import_households(sessions, household_files.xlsx(rows))

    assert report.committed is False
    assert report.errors == [RowError(3, "id_as_number", "身份证号")]
    assert counts(sessions) == (0, 0)


def test_read_table_numbers_rows_like_a_spreadsheet(household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    path = household_files.csv([rows[0], [], ["", " ", ""], rows[1]])

    table = read_table(path)

    assert [(number, cells["姓名"]) for number, cells in table] == [(2, "张三"), (5, "张小三")]


def test_columns_may_come_in_any_order_with_extra_columns(
    sessions: sessionmaker, household_files: HouseholdFiles
) -> None:
    header = ["备注", "姓名", "户编号", "身份证号", "手机", "村", "乡镇", "区县", "市"]
    header += ["家庭人口", "类别", "是否建档立卡"]
    id_number = household_files.id_number()
    path = household_files.csv(
        [["随便", "张三", "T-0001", id_number, "", "测试村", "太河镇", "淄川区", "淄博市", "1", "脱贫户", "是"]],
        header=header,
    )

    report = import_households(sessions, path)

    assert report.committed is True
    assert person(sessions, id_number).name == "张三"


def test_missing_header_is_a_file_error(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    header = ["户编号", "姓名", "身份证号", "手机", "市", "区县", "乡镇", "家庭人口", "类别"]
    path = household_files.csv([], header=header)

    with pytest.raises(ImportFileError) as raised:
        import_households(sessions, path)

    assert raised.value.code == "headers"
    assert raised.value.detail == "村、是否建档立卡"


@pytest.mark.parametrize("name", ["households.xls", "households.json", "households"])
def test_unsupported_extension_is_a_file_error(
    sessions: sessionmaker, household_files: HouseholdFiles, name: str
) -> None:
    path = household_files.csv(three_good_rows(household_files), name=name)

    with pytest.raises(ImportFileError) as raised:
        import_households(sessions, path)

    assert raised.value.code == "format"
    assert counts(sessions) == (0, 0)


def test_empty_file_is_a_file_error(sessions: sessionmaker, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    with pytest.raises(ImportFileError) as raised:
        import_households(sessions, path)

    assert raised.value.code == "empty"


@pytest.mark.parametrize(
    ("cells", "error"),
    [
        ({"姓名": ""}, RowError(2, "missing", "姓名")),
        ({"户编号": "  "}, RowError(2, "missing", "户编号")),
        ({"村": ""}, RowError(2, "missing", "村")),
        ({"身份证号": ""}, RowError(2, "missing", "身份证号")),
        ({"户编号": "T" * 33}, RowError(2, "too_long", "户编号", "32")),
        ({"身份证号": "37039919800101"}, RowError(2, "id_number", "身份证号", "length")),
        ({"身份证号": "370399198002300011"}, RowError(2, "id_number", "身份证号", "birth_date")),
        ({"手机": "0533-1234567"}, RowError(2, "phone", "手机")),
        ({"手机": "1380013800"}, RowError(2, "phone", "手机")),
        ({"家庭人口": "0"}, RowError(2, "size", "家庭人口", "0")),
        ({"家庭人口": "abc"}, RowError(2, "size", "家庭人口", "abc")),
        ({"家庭人口": "31"}, RowError(2, "size", "家庭人口", "31")),
        ({"家庭人口": "2.5"}, RowError(2, "size", "家庭人口", "2.5")),
        ({"类别": "富裕户"}, RowError(2, "status", "类别", "富裕户")),
        ({"是否建档立卡": "也许"}, RowError(2, "flag", "是否建档立卡", "也许")),
    ],
    ids=[
        "missing-name",
        "blank-household-code",
        "missing-village",
        "missing-id-number",
        "household-code-too-long",
        "id-number-length",
        "id-number-birth-date",
        "landline",
        "short-phone",
        "size-0",
        "size-abc",
        "size-31",
        "size-decimal",
        "unknown-status",
        "unknown-flag",
    ],
)
def test_bad_cell_is_reported_with_row_and_code(
    sessions: sessionmaker, household_files: HouseholdFiles, cells: dict[str, str], error: RowError
) -> None:
    path = household_files.csv([household_files.row(**cells), household_files.row(户编号="T-0002")])

    report = import_households(sessions, path)

    assert report.errors == [error]
    assert report.committed is False
    assert counts(sessions) == (0, 0)


def test_circled_digit_household_size_is_reported_not_raised(
    sessions: sessionmaker, household_files: HouseholdFiles
) -> None:
    path = household_files.csv([household_files.row(家庭人口="③")])

    report = import_households(sessions, path)

    assert report.errors == [RowError(2, "size", "家庭人口", "③")]
    assert report.committed is False


@pytest.mark.parametrize(("flag", "expected"), [("是", True), ("Y", True), ("√", True), ("否", False), ("No", False)])
def test_registered_poor_flag_values(
    sessions: sessionmaker, household_files: HouseholdFiles, flag: str, expected: bool
) -> None:
    import_households(sessions, household_files.csv([household_files.row(是否建档立卡=flag)]))

    with sessions() as session:
        assert session.execute(select(Household.is_registered_poor)).scalar_one() is expected


def test_empty_phone_is_allowed(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    row = household_files.row(手机="")

    report = import_households(sessions, household_files.csv([row]))

    assert report.committed is True
    assert person(sessions, str(row[2])).phone is None


def test_duplicate_id_number_names_the_first_row(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = three_good_rows(household_files)
    duplicate = household_files.row(户编号="T-0009", 身份证号=rows[0][2])
    old_form_duplicate = household_files.row(户编号="T-0009", 身份证号="370399800101001")

    report = import_households(sessions, household_files.csv([*rows, duplicate, old_form_duplicate]))

    assert report.errors == [RowError(5, "duplicate_id", "身份证号", "2"), RowError(6, "duplicate_id", "身份证号", "2")]
    assert report.committed is False
    assert counts(sessions) == (0, 0)


def test_household_rows_must_agree(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    rows = [
        household_files.row(户编号="T-0001"),
        household_files.row(户编号="T-0002"),
        household_files.row(户编号="T-0001", 村="别的村"),
        household_files.row(户编号="T-0001", 类别="低保户"),
        household_files.row(户编号="T-0002", 是否建档立卡="否"),
        household_files.row(户编号="T-0002", 家庭人口="2"),
    ]

    report = import_households(sessions, household_files.csv(rows))

    assert report.errors == [
        RowError(4, "household_conflict", "市/区县/乡镇/村", "2"),
        RowError(5, "household_conflict", "类别", "2"),
        RowError(6, "household_conflict", "是否建档立卡", "3"),
        RowError(7, "household_conflict", "家庭人口", "3"),
    ]
    assert report.committed is False


def test_synthetic_import_marks_the_households(sessions: sessionmaker, household_files: HouseholdFiles) -> None:
    import_households(sessions, household_files.csv(three_good_rows(household_files)), synthetic=True)

    with sessions() as session:
        assert session.execute(select(Household.is_synthetic)).scalars().all() == [True, True]


def test_demo_ids_are_all_valid() -> None:
    with (DEMO_DIR / "households.csv").open(encoding="utf-8", newline="") as f:
        id_numbers = [row["身份证号"] for row in csv.DictReader(f)]

    assert len(id_numbers) == 31
    assert [n for n in id_numbers if not validate_id_number(n).ok] == []
    assert all(n[:6] in ("370399", "370499") for n in id_numbers)


def test_load_demo_twice_changes_nothing_the_second_time(sessions: sessionmaker) -> None:
    first = load_demo(sessions)

    assert first.households.errors == []
    assert first.households.committed is True
    assert (first.households.households_created, first.households.persons_created) == (12, 31)
    assert (first.cadres_created, first.cadres_existing) == (3, 0)

    second = load_demo(sessions)

    assert second.households.errors == []
    assert (second.households.households_created, second.households.households_updated) == (0, 0)
    assert (second.households.persons_created, second.households.persons_updated) == (0, 0)
    assert second.households.unchanged == 31
    assert (second.cadres_created, second.cadres_existing) == (0, 3)
    assert counts(sessions) == (12, 31)
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Cadre)).scalar_one() == 3
        assert session.execute(select(func.count()).select_from(ChatIdentity)).scalar_one() == 3
        assert set(session.execute(select(Household.is_synthetic)).scalars()) == {True}
        assert set(session.execute(select(Cadre.is_synthetic)).scalars()) == {True}
        stored_ids = session.execute(select(Person.id_number)).scalars().all()
    assert all(validate_id_number(n).normalized == n for n in stored_ids)
