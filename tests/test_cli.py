from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from actions import crypto
from actions.cli import build_parser, main
from actions.db.migrate import MIGRATIONS_DIR
from actions.db.models import Cadre, Notification, Person
from actions.db.session import make_engine, make_sessionmaker
from tests.conftest import HouseholdFiles

TAIHE = "淄博市/淄川区/太河镇"
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


@pytest.fixture
def db_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    return database_url


@pytest.fixture
def migrated(db_env: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    return db_env


def row_count(database_url: str, model: type) -> int:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def file_with_bad_row(files: HouseholdFiles) -> Path:
    bad = files.row(户编号="T-0002", 身份证号="370399198001010010")
    return files.csv([files.row(户编号="T-0001"), files.row(户编号="T-0001"), bad])


def cadre_add(name: str, region: str, chat_id: str = "42") -> list[str]:
    return ["cadre", "add", "--name", name, "--region", region, "--chat-id", chat_id]


def test_db_upgrade(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == "(空数据库)"

    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == f"数据库已迁移到 {HEAD}(sqlite)"

    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == HEAD


def test_import_with_a_bad_row_is_refused(
    migrated: str, household_files: HouseholdFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "households", str(file_with_bad_row(household_files))])

    out = capsys.readouterr().out
    assert code == 1
    assert "读取 3 行,合格 2 行,有问题 1 行。" in out
    assert "第 4 行:身份证号最后一位校验码对不上" in out
    assert "什么都没有导入" in out
    assert "370399198001010010" not in out
    assert row_count(migrated, Person) == 0


def test_import_with_skip_invalid_imports_the_good_rows(
    migrated: str, household_files: HouseholdFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import", "households", str(file_with_bad_row(household_files)), "--skip-invalid"])

    out = capsys.readouterr().out
    assert code == 0
    assert "第 4 行" in out
    assert "已导入:新建 1 户、更新 0 户;新建 2 人、更新 0 人、没有变化 0 人。有问题的 1 行已跳过。" in out
    assert row_count(migrated, Person) == 2


def test_import_of_a_missing_file_is_a_usage_error(
    migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "households", str(tmp_path / "nope.csv")]) == 2
    assert "找不到文件" in capsys.readouterr().err


def test_import_of_an_unsupported_file_type_is_a_usage_error(
    migrated: str, household_files: HouseholdFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    path = household_files.csv([household_files.row()], name="households.json")

    assert main(["import", "households", str(path)]) == 2
    assert "不支持的文件类型 .json" in capsys.readouterr().err


def test_import_with_missing_headers_is_a_usage_error(
    migrated: str, household_files: HouseholdFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    path = household_files.csv([], header=["户编号", "姓名"])

    assert main(["import", "households", str(path)]) == 2
    assert "表头缺少:身份证号、手机" in capsys.readouterr().err


def test_cadre_add_in_an_unknown_region_is_refused(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cadre_add("李四", "淄博市/淄川区/不存在镇")) == 1
    assert "淄博市/淄川区/不存在镇" in capsys.readouterr().err
    assert row_count(migrated, Cadre) == 0


def test_cadre_add_with_a_malformed_region_is_refused(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cadre_add("李四", "淄博市/淄川区/太河镇/东峪村/一组")) == 1
    assert "收到 5 级" in capsys.readouterr().err


def test_cadre_add_after_demo_load(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "load"]) == 0
    assert "演示干部:新建 3 名,已有 0 名" in capsys.readouterr().out

    assert main(cadre_add("李四", TAIHE)) == 0
    assert capsys.readouterr().out.strip() == f"已登记干部李四,辖区 {TAIHE},telegram 42"

    assert main(cadre_add("李四", TAIHE)) == 0
    assert capsys.readouterr().out.startswith("干部已登记过,没有变化")

    assert main(cadre_add("王五", TAIHE)) == 1
    assert "已经绑定" in capsys.readouterr().err
    assert row_count(migrated, Cadre) == 4


def test_demo_load_twice(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "load"]) == 0
    capsys.readouterr()

    assert main(["demo", "load"]) == 0
    out = capsys.readouterr().out
    assert "新建 0 户、更新 0 户;新建 0 人、更新 0 人、没有变化 31 人" in out
    assert "演示干部:新建 0 名,已有 3 名" in out


def test_import_into_a_database_that_was_never_migrated(
    db_env: str, household_files: HouseholdFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    path = household_files.csv([household_files.row()])

    assert main(["import", "households", str(path)]) == 3
    assert "helpline db upgrade" in capsys.readouterr().err


def test_cadre_invite_gives_a_code_that_registers_the_chat_account(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from actions.services.invites import redeem_invite

    assert main(["demo", "load"]) == 0
    capsys.readouterr()
    assert main(["cadre", "invite", "--name", "李四", "--region", "淄博市/不存在区"]) == 1
    assert "不在数据库中" in capsys.readouterr().err
    assert main(["cadre", "invite", "--name", "李四", "--region", TAIHE, "--admin"]) == 0
    out = capsys.readouterr().out
    code = out.split()[1].split(":")[0]
    assert f"辖区 {TAIHE}" in out and "管理员" in out and len(code) == 9
    engine = make_engine(migrated)
    try:
        with make_sessionmaker(engine).begin() as session:
            registered = redeem_invite(session, "telegram", "4242", f"干部绑定 {code}")
    finally:
        engine.dispose()
    assert registered.is_admin and registered.jurisdiction == TAIHE
    assert row_count(migrated, Cadre) == 4


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["db"], ["cadre", "add", "--name", "李四"]])
def test_bad_usage_exits_with_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)

    assert raised.value.code == 2
    assert "usage: helpline" in capsys.readouterr().err


def test_insurance_paid_marks_an_enrollment(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    from decimal import Decimal

    from actions.db.models import Enrollment

    engine = make_engine(migrated)
    with make_sessionmaker(engine).begin() as session:
        session.add(
            Enrollment(
                reference="QH2026-ABCDEF", product="qihuibao", policy_year=2026, name="测试",
                id_number="370399198001010015", phone="13800138000", premium=Decimal(99),
            )
        )  # fmt: skip
    engine.dispose()

    assert main(["insurance", "paid", "qh2026-abcdef"]) == 0
    assert "已记为已缴费:QH2026-ABCDEF" in capsys.readouterr().out
    assert main(["insurance", "paid", "QH2026-NOSUCH"]) == 1
    assert "没有参保编号" in capsys.readouterr().err
    engine = make_engine(migrated)
    with make_sessionmaker(engine)() as session:
        assert session.execute(select(Enrollment.paid_at)).scalar_one() is not None
    engine.dispose()


def test_case_show_and_move_work_the_workflow_as_a_cadre(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    from decimal import Decimal

    from actions.services.cases import Declaration, submit
    from actions.services.triage import MonitoringRules
    from tests.conftest import make_id_number

    assert main(["demo", "load"]) == 0
    id_number = make_id_number("19700101", 77)
    engine = make_engine(migrated)
    case = submit(
        make_sessionmaker(engine),
        MonitoringRules.load(),
        Declaration(
            name="测试",
            id_number=id_number,
            phone="13800138000",
            address="太河镇",
            cause="因灾",
            amount=Decimal(20000),
            income=Decimal(10000),
            size=2,
            description="房子塌了没地方住",
            channel="rest",
            channel_user_id="v1",
            region_path="淄博市/淄川区/太河镇",
        ),
        describe=lambda view: view.case_no,
    ).case
    engine.dispose()
    capsys.readouterr()

    assert main(["case", "show", case.case_no]) == 0
    shown = capsys.readouterr().out
    assert "突发严重困难户" in shown and "即时帮扶" in shown and "演示·刘书记" in shown
    assert id_number not in shown and "138****8000" in shown

    taihe = ["--cadre-chat-id", "demo-cadre-taihe", "--channel", "rest"]
    assert main(["case", "move", case.case_no, "核实中", *taihe, "--note", "已电话联系"]) == 0
    assert "已改为“核实中”" in capsys.readouterr().out
    assert main(["case", "move", case.case_no, "风险消除", *taihe]) == 1  # not from 核实中
    assert "不能改为" in capsys.readouterr().err
    assert main(["case", "move", case.case_no, "纳入监测", *taihe]) == 1  # every move says why
    assert "原因" in capsys.readouterr().err
    # The 枣庄 administrator's jurisdiction does not reach 淄博.
    assert main(["case", "move", case.case_no, "纳入监测", "--cadre-chat-id", "demo-cadre-zaozhuang",
                 "--channel", "rest", "--note", "核实属实"]) == 1  # fmt: skip
    assert "辖区" in capsys.readouterr().err
    assert main(["case", "move", case.case_no, "纳入监测", "--cadre-chat-id", "nobody", "--note", "核实属实"]) == 1
    assert main(["case", "move", case.case_no, "纳入监测", *taihe, "--note", "核实属实"]) == 0
    capsys.readouterr()
    assert main(["case", "show", case.case_no]) == 0
    history = capsys.readouterr().out
    assert "已提交 → 核实中  演示·刘书记:已电话联系" in history and "核实中 → 纳入监测  演示·刘书记:核实属实" in history
    engine = make_engine(migrated)
    with make_sessionmaker(engine)() as session:  # the declarant's chat is told each step, in plain words
        told = (
            session.execute(
                select(Notification.text).where(Notification.channel_user_id == "v1").order_by(Notification.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert len(told) == 2 and "核实您家的情况" in told[0] and "纳入防返贫监测" in told[1]
    assert id_number not in "".join(told)


def test_cases_export_and_audit(migrated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from decimal import Decimal

    from openpyxl import load_workbook

    from actions.services.cases import Declaration, submit
    from actions.services.exports import COLUMNS
    from actions.services.triage import MonitoringRules
    from tests.conftest import make_id_number

    assert main(["demo", "load"]) == 0
    id_number = make_id_number("19700101", 78)
    engine = make_engine(migrated)
    declaration = Declaration(
        name="测试", id_number=id_number, phone="13800138000", address="太河镇", cause="因灾", amount=Decimal(20000),
        income=Decimal(10000), size=2, description="房子塌了", channel="rest", channel_user_id="v2",
        region_path="淄博市/淄川区/太河镇",
    )  # fmt: skip
    case = submit(make_sessionmaker(engine), MonitoringRules.load(), declaration, describe=lambda v: v.case_no).case
    engine.dispose()
    taihe = ["--cadre-chat-id", "demo-cadre-taihe", "--channel", "rest"]
    assert main(["case", "move", case.case_no, "核实中", *taihe, "--note", "电话核实"]) == 0
    assert main(["case", "move", case.case_no, "即时帮扶", *taihe, "--note", "房屋倒塌"]) == 0
    capsys.readouterr()

    out = tmp_path / "list.xlsx"
    assert main(["cases", "export", "--region", "淄博市/淄川区", "--format", "xlsx", "--output", str(out)]) == 0
    rows = list(load_workbook(out).active.iter_rows(values_only=True))
    assert rows[0] == COLUMNS
    assert [(r[0], r[2], r[COLUMNS.index("申报状态")]) for r in rows[1:]] == [(case.case_no, id_number, "即时帮扶")]
    other = tmp_path / "yiyuan.csv"
    assert main(["cases", "export", "--region", "淄博市/沂源县", "--format", "csv", "--output", str(other)]) == 0
    assert other.read_text(encoding="utf-8-sig").splitlines() == [",".join(COLUMNS)]  # nothing of 淄川
    assert main(["cases", "export", "--region", "火星市"]) == 1
    capsys.readouterr()

    assert main(["audit", "--since", "2000-01-01"]) == 0
    listed = capsys.readouterr().out
    assert "case.move" in listed and "export" in listed and case.case_no in listed and id_number not in listed
    assert main(["audit", "--since", "yesterday"]) == 2


def test_keygen_prints_a_fresh_usable_data_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out.strip()

    assert first != second
    assert len(crypto.decode_secret(first)) >= crypto.MIN_SECRET_BYTES
    assert "生成一个新的 HELPLINE_DATA_KEY" in build_parser().format_help()


def test_a_server_database_without_a_data_key_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://helpline@127.0.0.1:9/helpline")
    monkeypatch.delenv("HELPLINE_DATA_KEY")

    assert main(["db", "upgrade"]) == 3

    err = capsys.readouterr().err
    assert "数据密钥" in err and "helpline keygen" in err
    assert "HELPLINE_DATA_KEY is not" in err  # the DataKeyError, in English too


def test_another_data_key_stops_before_anything_is_written(
    migrated: str, household_files: HouseholdFiles, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With another key every lookup by hash would miss and an import would add everyone a second time."""
    path = household_files.csv([household_files.row(户编号="T-0001"), household_files.row(户编号="T-0002")])
    assert main(["import", "households", str(path)]) == 0
    monkeypatch.setenv("HELPLINE_DATA_KEY", crypto.new_secret())
    crypto.configure(None)
    capsys.readouterr()

    assert main(["import", "households", str(path)]) == 3

    assert "HELPLINE_DATA_KEY 不是加密它们的密钥" in capsys.readouterr().err
    assert row_count(migrated, Person) == 2
