"""Backup and restore of the embedded SQLite database: actions/db/backup.py and `helpline db backup/restore`."""

from __future__ import annotations

import socket
import sqlite3
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from actions.cli import main
from actions.db.backup import BackupError, NotSQLite, backup, inspect, restore
from actions.db.models import CaseAssignment, CaseEvent, HardshipCase, Notification
from actions.services.cases import Declaration, case_by_number, submit
from actions.services.triage import MonitoringRules
from tests.conftest import make_id_number

PG_URL = "postgresql+psycopg2://helpline:s3cret-pw@db.example.org:5432/helpline"


def declare(sessions: sessionmaker, key: str, sequence: int) -> str:
    declaration = Declaration(
        name=f"测试{sequence}", id_number=make_id_number("19700101", sequence), phone="13300002486",
        address="东峪村", cause="因病", amount=Decimal(30000), income=Decimal(24000), size=3,
        description="住院花了三万", channel="rest", channel_user_id=f"v-{key}",
        region_path=None, submission_key=key,
    )  # fmt: skip
    return submit(sessions, MonitoringRules.load(), declaration, describe=lambda v: v.case_no).case.case_no


def case_numbers(sessions: sessionmaker) -> list[str]:
    with sessions() as session:
        return list(session.execute(select(HardshipCase.case_no).order_by(HardshipCase.case_no)).scalars())


def delete_case(sessions: sessionmaker, case_no: str) -> None:
    with sessions.begin() as session:
        case_id = session.execute(select(HardshipCase.id).where(HardshipCase.case_no == case_no)).scalar_one()
        for child in (Notification, CaseAssignment, CaseEvent):
            session.execute(delete(child).where(child.case_id == case_id))
        session.execute(delete(HardshipCase).where(HardshipCase.id == case_id))


def db_file(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cases(sessions: sessionmaker) -> list[str]:
    return [declare(sessions, "a", 1), declare(sessions, "b", 2)]


def test_a_round_trip_brings_the_data_back(
    database_url: str, engine: Engine, sessions: sessionmaker, cases: list[str], tmp_path: Path
) -> None:
    first, second = cases
    saved = backup(database_url, tmp_path / "backups" / "helpline.db")
    assert saved.cases == 2 and saved.path.is_file() and mode(saved.path) == 0o600

    with sessions.begin() as session:
        session.execute(update(HardshipCase).where(HardshipCase.case_no == first).values(status="核实中"))
    delete_case(sessions, second)
    third = declare(sessions, "c", 3)
    assert case_numbers(sessions) == sorted([first, third])

    done = restore(database_url, saved.path)
    assert case_numbers(sessions) == sorted(cases)  # the running engine's pool sees the restored database
    with sessions() as session:
        view = case_by_number(session, first)
        assert view is not None and view.status == "已提交"
        assert view.id_number == make_id_number("19700101", 1)  # decrypted with the same data key
    assert done.info.cases == 2 and done.info.revision == done.head
    assert done.safety_copy is not None and mode(done.safety_copy) == 0o600
    assert inspect(done.safety_copy).cases == 2  # the state just before: first and third
    assert done.safety_copy.parent == db_file(database_url).parent


def test_the_backup_is_one_closed_file_without_deleted_data(
    database_url: str, sessions: sessionmaker, cases: list[str], tmp_path: Path
) -> None:
    delete_case(sessions, cases[1])
    target = backup(database_url, tmp_path / "b.db").path
    assert not Path(f"{target}-wal").exists() and not Path(f"{target}-journal").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with sqlite3.connect(target) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert connection.execute("PRAGMA freelist_count").fetchone()[0] == 0
    content = target.read_bytes()
    for sequence in (1, 2):
        assert make_id_number("19700101", sequence).encode() not in content  # encrypted, and no free page left
    assert cases[1].encode() not in content


def test_a_backup_is_consistent_while_another_connection_writes(
    database_url: str, sessions: sessionmaker, cases: list[str], tmp_path: Path
) -> None:
    writer = sqlite3.connect(db_file(database_url), timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE cases SET status = '核实中'")  # not committed while the backup runs
        saved = backup(database_url, tmp_path / "during.db")
    finally:
        writer.rollback()
        writer.close()
    with sqlite3.connect(saved.path) as connection:
        assert {row[0] for row in connection.execute("SELECT status FROM cases")} == {"已提交"}


def test_an_existing_file_is_not_overwritten_without_force(
    database_url: str, engine: Engine, cases: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "keep.db"
    target.write_bytes(b"an older backup")
    target.chmod(0o644)
    with pytest.raises(BackupError, match="已经存在.*--force"):
        backup(database_url, target)
    assert target.read_bytes() == b"an older backup"
    assert backup(database_url, target, force=True).cases == 2
    assert mode(target) == 0o600 and inspect(target).cases == 2


def test_what_is_not_a_backup_is_refused(
    database_url: str, sessions: sessionmaker, cases: list[str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("不是数据库", encoding="utf-8")
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
    newer = backup(database_url, tmp_path / "newer.db").path
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    before = db_file(database_url).read_bytes()
    for path, why in (
        (text, "不是 SQLite"),
        (empty, "不是 SQLite"),
        (other, "缺少 alembic_version、cases"),
        (newer, "不认识"),
        (tmp_path / "missing.db", "找不到"),
        (db_file(database_url), "本身"),
    ):
        with pytest.raises(BackupError, match=why):
            restore(database_url, path)
    assert case_numbers(sessions) == sorted(cases)
    assert db_file(database_url).read_bytes() == before
    assert not list(db_file(database_url).parent.glob("*.before-restore-*"))  # refused before the safety copy


def test_a_backup_of_nothing_or_onto_itself_is_refused(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="不存在"):
        backup(database_url, tmp_path / "x.db")  # no database yet
    db_file(database_url).parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(BackupError, match="文件夹"):
        backup(database_url, tmp_path)
    with pytest.raises(BackupError):
        backup("sqlite://", tmp_path / "memory.db")


def test_postgresql_is_refused_with_its_own_tools(tmp_path: Path) -> None:
    for attempt in (lambda: backup(PG_URL, tmp_path / "x.db"), lambda: restore(PG_URL, tmp_path / "x.db")):
        with pytest.raises(NotSQLite) as refused:
            attempt()
        message = str(refused.value)
        assert "pg_dump --format=custom --file=helpline.dump" in message
        assert "pg_restore --clean --if-exists" in message
        assert 'PG_URL="postgresql://helpline@db.example.org:5432/helpline"' in message  # libpq's form, no driver
        assert "s3cret-pw" not in message
    assert not (tmp_path / "x.db").exists()


# --- the command line ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_db(monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, cases: list[str]) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    with socket.socket() as one, socket.socket() as two:  # ports nothing listens on
        one.bind(("127.0.0.1", 0))
        two.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ACTION_PORT", str(one.getsockname()[1]))
        monkeypatch.setenv("RASA_PORT", str(two.getsockname()[1]))
    yield database_url


def test_the_commands(cli_db: str, sessions: sessionmaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli.db"
    assert main(["db", "backup", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"已备份到 {target}" in out and "2 件申报" in out and "0600" in out and mode(target) == 0o600

    assert main(["db", "backup", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["db", "backup", str(target), "--force"]) == 0
    capsys.readouterr()

    delete_case(sessions, case_numbers(sessions)[0])
    assert main(["db", "restore", str(target)]) == 0
    out = capsys.readouterr().out
    safety = Path(out.split("恢复前的数据库已另存为 ", 1)[1].split()[0])
    assert safety.is_file() and mode(safety) == 0o600 and inspect(safety).cases == 1
    assert len(case_numbers(sessions)) == 2 and "2 件申报" in out

    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    assert main(["db", "restore", str(tmp_path / "notes.txt")]) == 1
    assert "不是 SQLite" in capsys.readouterr().err
    assert main(["db", "restore", str(tmp_path / "missing.db")]) == 2


def test_a_restore_while_the_servers_seem_to_run_needs_force(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "backup", str(tmp_path / "b.db")]) == 0
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("ACTION_PORT", str(server.getsockname()[1]))
        assert main(["db", "restore", str(tmp_path / "b.db")]) == 1
        assert "有服务在运行" in capsys.readouterr().err
        assert not list(db_file(cli_db).parent.glob("*.before-restore-*"))
        assert main(["db", "restore", str(tmp_path / "b.db"), "--force"]) == 0


def test_the_commands_refuse_postgresql(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    for command in ("backup", "restore"):
        assert main(["db", command, "helpline.dump"]) == 1
        err = capsys.readouterr().err
        assert "PostgreSQL" in err and "pg_dump" in err and "pg_restore" in err and "s3cret-pw" not in err
