from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from actions import crypto
from actions.db.migrate import alembic_config, current_revision, downgrade, upgrade
from actions.db.models import Base, Enrollment, Person
from actions.db.session import make_engine, make_sessionmaker
from actions.db.types import id_number_digest
from actions.services.cases import Declaration
from actions.services.insurance import Standing, Terms, enroll, enrollment_of, look_up
from actions.services.knowledge import load_knowledge_base
from actions.services.workspace import Officer, find_households
from tests.conftest import make_id_number
from tests.servers import PostgresServer

# Every test here runs on the embedded SQLite default and on PostgreSQL (a private server, tests/servers.py).


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'helpline.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"m_{uuid.uuid4().hex[:16]}")


def sqlite_only(database_url: str, why: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip(why)


MODEL_TABLES = {
    "regions",
    "households",
    "persons",
    "cadres",
    "chat_identities",
    "cases",
    "case_events",
    "enrollments",
    "case_assignments",
    "notifications",
    "help_measures",
    "household_changes",
    "audit_log",
    "cadre_invites",
    "telegram_updates",
    "telegram_buttons",
    "case_numbers",
}


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def test_models_define_the_expected_tables() -> None:
    assert set(Base.metadata.tables) == MODEL_TABLES


def test_upgrade_from_empty_creates_every_model_table(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert tables(engine) == set()
        assert current_revision(engine) is None

        upgrade(engine)

        assert tables(engine) == set(Base.metadata.tables)
        assert current_revision(engine) == head_revision(engine)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)

    assert diff == []


def test_migrated_schema_has_the_named_constraints(engine: Engine) -> None:
    inspector = inspect(engine)

    assert {c["name"] for c in inspector.get_check_constraints("households")} == {
        "ck_households_status",
        "ck_households_abcd_class",
        "ck_households_size",
    }
    assert {c["name"] for c in inspector.get_unique_constraints("enrollments")} == {
        "uq_enrollments_id_number_hash_product_policy_year",
        "uq_enrollments_reference",
    }
    assert {c["name"] for c in inspector.get_unique_constraints("persons")} == {"uq_persons_id_number_hash"}
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("persons")} == {"households"}


def test_enrollment_rows_written_before_0002_get_a_reference(engine: Engine) -> None:
    downgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO enrollments (product, policy_year, name, id_number, phone, premium, verified, created_at)"
                " VALUES ('qihuibao', 2026, '测试', '370399198001010015', '13800138000', 99, false, '2026-01-01')"
            )
        )

    upgrade(engine)

    with engine.connect() as connection:
        reference = connection.execute(text("SELECT reference FROM enrollments")).scalar_one()
    assert re.fullmatch(r"QH2026-[2-9A-Z]{6}", reference)


def test_cases_written_before_0003_move_from_the_old_first_status_and_back(engine: Engine) -> None:
    downgrade(engine, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cases (case_no, status, created_at, updated_at)"
                " VALUES ('SB-2026-000001', '待核实', '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text("INSERT INTO case_events (case_id, to_status, created_at) VALUES (1, '待核实', '2026-01-01')")
        )

    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status, urgent FROM cases")).one() == ("已提交", 0)
        assert connection.execute(text("SELECT to_status FROM case_events")).scalar_one() == "已提交"
    assert {c["name"] for c in inspect(engine).get_check_constraints("cases")} == {
        "ck_cases_status",
        "ck_cases_category",
        "ck_cases_risk",
        "ck_cases_household_size",
        "ck_cases_id_number_hash",
    }

    downgrade(engine, "0002")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM cases")).scalar_one() == "待核实"


def test_downgrade_to_base_removes_the_tables_and_upgrade_works_again(engine: Engine) -> None:
    downgrade(engine, "base")

    assert tables(engine) == set()
    assert current_revision(engine) is None

    upgrade(engine)

    assert tables(engine) == set(Base.metadata.tables)
    assert current_revision(engine) == head_revision(engine)


REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]


def test_the_revision_list_is_complete(engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == REVISIONS


@pytest.mark.parametrize("start", REVISIONS[:-1])
def test_upgrade_from_each_earlier_revision_reaches_the_models(database_url: str, start: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, start)
        assert current_revision(engine) == start
        upgrade(engine)
        assert current_revision(engine) == head_revision(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_0008_counts_on_from_the_cases_already_numbered(engine: Engine) -> None:
    downgrade(engine, "0007")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO regions (id, name, level, parent_id, path) VALUES (1, '淄博市', '市', NULL, '淄博市')"
        )
        for number in ("SB-2025-000041", "SB-2026-000007", "SB-2026-000012"):
            connection.exec_driver_sql(
                "INSERT INTO cases (case_no, status, urgent, created_at, updated_at)"
                f" VALUES ('{number}', '已提交', false, '2026-01-01 08:00:00', '2026-01-01 08:00:00')"
            )
    upgrade(engine)
    with engine.connect() as connection:
        counters = connection.exec_driver_sql("SELECT year, last FROM case_numbers ORDER BY year").all()
    assert [tuple(c) for c in counters] == [(2025, 41), (2026, 12)]


def test_upgrading_twice_is_a_no_op(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO regions (id, name, level, parent_id, path) VALUES (1, '淄博市', '市', NULL, '淄博市')"
        )

    upgrade(engine)

    assert current_revision(engine) == head_revision(engine)
    assert tables(engine) == set(Base.metadata.tables)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT path FROM regions").scalars().all() == ["淄博市"]
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1


# 0007: the 身份证号 encrypted at rest, with a keyed hash for lookups and unique constraints.

POOR = ("王志强", make_id_number("19500714", 4))
ORDINARY = ("刘立新", make_id_number("19501010", 9))
DECLARANT = ("孙丽", make_id_number("19720624", 15))
UNIQUE_TO_0007 = [POOR[1], ORDINARY[1], DECLARANT[1]]
CASE_FIGURES = {
    "cause": "因病",
    "amount": Decimal("30000.5"),
    "income": Decimal(24000),
    "size": 3,
    "text": "住院 花三万",
}


def old_fingerprint(id_number: str) -> str:
    """Declaration.fingerprint as 0006 stored it: an unkeyed SHA-256 that contains the 身份证号."""
    parts = (id_number, "因病", "30000.5", "2.4E+4", "3", "住院花三万")
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def declared(id_number: str) -> dict:
    f = CASE_FIGURES
    return dict(name=DECLARANT[0], id_number=id_number, phone="13900001111", address="测试村", cause=f["cause"],
                amount=f["amount"], income=f["income"], size=f["size"], description=f["text"], channel="rest",
                channel_user_id="c1")  # fmt: skip


def fill_at_0006(engine: Engine, *, declarant_id: str = DECLARANT[1]) -> None:
    """Plain rows as 0006 kept them: two persons, an enrollment, a case with and one without a 身份证号."""
    f = CASE_FIGURES
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO regions (id, name, level, parent_id, path) VALUES (1, '淄博市', '市', NULL, '淄博市')",
            "INSERT INTO regions (id, name, level, parent_id, path) VALUES (2, '测试村', '村', 1, '淄博市/测试村')",
            "INSERT INTO households (id, code, region_id, status, is_registered_poor, is_synthetic, created_at,"
            " updated_at) VALUES (1, 'T-0001', 2, '脱贫户', TRUE, FALSE, '2026-01-01', '2026-01-01')",
            "INSERT INTO households (id, code, region_id, status, is_registered_poor, is_synthetic, created_at,"
            " updated_at) VALUES (2, 'T-0002', 2, '一般农户', FALSE, FALSE, '2026-01-01', '2026-01-01')",
        ):
            connection.exec_driver_sql(sql.replace("'2026-01-01'", "'2026-01-01 08:00:00'"))
        for household_id, (name, number) in ((1, POOR), (2, ORDINARY)):
            connection.execute(
                text(
                    "INSERT INTO persons (household_id, name, id_number, created_at, updated_at)"
                    " VALUES (:household_id, :name, :number, '2026-01-01 08:00:00', '2026-01-01 08:00:00')"
                ),
                {"household_id": household_id, "name": name, "number": number},
            )
        connection.execute(
            text(
                "INSERT INTO enrollments (reference, product, policy_year, person_id, name, id_number, phone, premium,"
                " verified, created_at) VALUES ('QH2026-AAAAAA', 'qihuibao', 2026, 1, :name, :number, '13800138000',"
                " 10, TRUE, '2026-01-01 08:00:00')"
            ),
            {"name": POOR[0], "number": POOR[1]},
        )
        cases = (
            ("SB-2026-000001", declarant_id, old_fingerprint(DECLARANT[1])),
            ("SB-2026-000002", None, None),
        )
        for case_no, number, fingerprint in cases:
            connection.execute(
                text(
                    "INSERT INTO cases (case_no, name, id_number, cause, amount, household_income, household_size,"
                    " description, status, urgent, fingerprint, created_at, updated_at) VALUES (:case_no, :name,"
                    " :number, :cause, :amount, :income, :size, :text, '已提交', FALSE, :fingerprint,"
                    " '2026-01-01 08:00:00', '2026-01-01 08:00:00')"
                ),
                {"case_no": case_no, "name": DECLARANT[0], "number": number, "fingerprint": fingerprint,
                 **{k: float(v) if isinstance(v, Decimal) else v for k, v in f.items()}},
            )  # fmt: skip


def raw_id_numbers(engine: Engine) -> dict[str, list[tuple[str | None, str | None]]]:
    """What a dump shows: each table's (id_number, id_number_hash) as stored, in id order."""
    found = {}
    with engine.connect() as connection:
        for table in ("persons", "cases", "enrollments"):
            columns = {c["name"] for c in inspect(connection).get_columns(table)}
            hashed = "id_number_hash" if "id_number_hash" in columns else "NULL"
            found[table] = [tuple(row) for row in connection.exec_driver_sql(
                f"SELECT id_number, {hashed} FROM {table} ORDER BY id")]  # fmt: skip
    return found


@pytest.fixture
def at_0006(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine, "0006")
    fill_at_0006(engine)
    yield engine
    engine.dispose()


def test_0007_encrypts_the_plain_id_numbers_and_fills_their_hashes(at_0006: Engine) -> None:
    assert raw_id_numbers(at_0006)["persons"] == [(POOR[1], None), (ORDINARY[1], None)]

    upgrade(at_0006, "0007")

    cipher = crypto.cipher()
    stored = raw_id_numbers(at_0006)
    expected = {
        "persons": [POOR[1], ORDINARY[1]],
        "cases": [DECLARANT[1], None],
        "enrollments": [POOR[1]],
    }
    for table, numbers in expected.items():
        assert len(stored[table]) == len(numbers)
        for (token, digest), number in zip(stored[table], numbers, strict=True):
            if number is None:
                assert (token, digest) == (None, None)
                continue
            assert token.startswith("f1:") and number not in token and not re.fullmatch(r"[0-9]{17}[0-9X]", token)
            assert cipher.decrypt(token) == number
            assert digest == cipher.digest(number) == id_number_digest(number)
    with make_sessionmaker(at_0006)() as session:
        assert [p.id_number for p in session.execute(select(Person).order_by(Person.id)).scalars()] == [
            POOR[1],
            ORDINARY[1],
        ]


def test_0007_makes_the_cases_fingerprint_keyed(at_0006: Engine) -> None:
    upgrade(at_0006, "0007")
    with at_0006.connect() as connection:
        fingerprints = connection.exec_driver_sql("SELECT fingerprint FROM cases ORDER BY id").scalars().all()
    assert fingerprints == [Declaration(**declared(DECLARANT[1])).fingerprint, None]

    downgrade(at_0006, "0006")
    with at_0006.connect() as connection:
        fingerprints = connection.exec_driver_sql("SELECT fingerprint FROM cases ORDER BY id").scalars().all()
    assert fingerprints == [old_fingerprint(DECLARANT[1]), None]


def test_after_0007_the_database_file_holds_no_plain_id_number(database_url: str) -> None:
    """Where SQLite does not zero freed space by default (secure_delete off), neither the table copies of batch mode,
    nor the overwritten values, nor a row deleted before the upgrade leave a 身份证号 in the file."""
    sqlite_only(database_url, "a file check; PostgreSQL keeps old row versions until VACUUM (README, Production)")
    path = Path(make_url(database_url).database or "")
    deleted = make_id_number("19660302", 423)
    engine = make_engine(database_url)

    @event.listens_for(engine, "connect")
    def _keep_freed_space(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA secure_delete = OFF")

    def file_bytes() -> bytes:
        engine.dispose()
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())

    try:
        upgrade(engine, "0006")
        fill_at_0006(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO persons (household_id, name, id_number, created_at, updated_at)"
                f" VALUES (1, '已删', '{deleted}', '2026-01-01 08:00:00', '2026-01-01 08:00:00')"
            )
            connection.exec_driver_sql(f"DELETE FROM persons WHERE id_number = '{deleted}'")
        assert all(n.encode() in file_bytes() for n in [*UNIQUE_TO_0007, deleted])  # the check can see them

        upgrade(engine, "0007")

        content = file_bytes()
        for number in [*UNIQUE_TO_0007, deleted]:
            assert number.encode() not in content
            assert number.encode("utf-16-le") not in content
    finally:
        engine.dispose()


def test_lookups_and_the_unique_constraints_work_on_migrated_rows(at_0006: Engine) -> None:
    upgrade(at_0006)
    sessions = make_sessionmaker(at_0006)
    terms = Terms.from_knowledge_base(load_knowledge_base())

    with sessions() as session:
        assert look_up(session, POOR[1], POOR[0]).standing is Standing.REGISTERED_POOR
        assert look_up(session, ORDINARY[1], ORDINARY[0]).standing is Standing.ORDINARY
        found = enrollment_of(session, POOR[1], 2026)
        assert found is not None and found.reference == "QH2026-AAAAAA" and found.id_number == POOR[1]
    again = enroll(sessions, terms, name=POOR[0], id_number=POOR[1], phone="13800138000", year=2026, channel="rest",
                   channel_user_id="c1")  # fmt: skip
    assert not again.created and again.enrollment.reference == "QH2026-AAAAAA"
    fresh = enroll(sessions, terms, name=ORDINARY[0], id_number=ORDINARY[1], phone="13800138000", year=2026,
                   channel="rest", channel_user_id="c2")  # fmt: skip
    assert fresh.created and fresh.enrollment.premium == terms.premium(False)

    with sessions.begin() as session:
        officer = Officer.operator(session, "淄博市")
        assert [h.code for h in find_households(session, officer, ORDINARY[1])] == ["T-0002"]
        assert [m.id_number for m in find_households(session, officer, POOR[1])[0].members] == [POOR[1]]

    with pytest.raises(IntegrityError, match="id_number_hash"), sessions.begin() as session:
        session.add(Enrollment(reference="QH2026-BBBBBB", product="qihuibao", policy_year=2026, name=POOR[0],
                               id_number=POOR[1], phone="13800138000", premium=Decimal(10)))  # fmt: skip
    with pytest.raises(IntegrityError, match="persons.id_number_hash"), sessions.begin() as session:
        session.add(Person(household_id=1, name="重复", id_number=POOR[1].lower()))


def test_0007_downgrade_restores_the_plain_values_and_constraints(at_0006: Engine) -> None:
    before = raw_id_numbers(at_0006)
    upgrade(at_0006)

    downgrade(at_0006, "0006")

    assert raw_id_numbers(at_0006) == before
    inspector = inspect(at_0006)
    assert {c["name"] for c in inspector.get_unique_constraints("persons")} == {"uq_persons_id_number"}
    assert {c["name"] for c in inspector.get_unique_constraints("enrollments")} == {
        "uq_enrollments_id_number_product_policy_year",
        "uq_enrollments_reference",
    }
    assert "id_number_hash" not in {c["name"] for c in inspector.get_columns("cases")}
    with pytest.raises(IntegrityError, match="persons.id_number"), at_0006.begin() as connection:
        connection.execute(
            text("INSERT INTO persons (household_id, name, id_number, created_at, updated_at)"
                 " VALUES (1, '重复', :number, '2026-01-01', '2026-01-01')"),
            {"number": POOR[1]},
        )  # fmt: skip

    upgrade(at_0006)
    assert [cipher_plain(token) for token, _ in raw_id_numbers(at_0006)["persons"]] == [POOR[1], ORDINARY[1]]


def cipher_plain(token: str | None) -> str | None:
    return None if token is None else crypto.cipher().decrypt(token)


def test_0007_leaves_values_already_encrypted_as_they_are(database_url: str) -> None:
    sqlite_only(database_url, "at 0006 PostgreSQL's VARCHAR(18) cannot hold an encrypted value")
    token = crypto.cipher().encrypt(DECLARANT[1])
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0006")
        fill_at_0006(engine, declarant_id=token)  # a re-run after a partial one: this row is encrypted already

        upgrade(engine)

        stored = raw_id_numbers(engine)["cases"]
        assert stored[0] == (token, id_number_digest(DECLARANT[1]))
        assert cipher_plain(stored[0][0]) == DECLARANT[1]
    finally:
        engine.dispose()


def test_a_value_encrypted_with_another_key_is_refused_not_misread(at_0006: Engine) -> None:
    upgrade(at_0006)
    other = crypto.DataCipher(crypto.decode_secret(crypto.new_secret()))
    with at_0006.begin() as connection:
        connection.execute(text("UPDATE persons SET id_number = :token WHERE id = 1"),
                           {"token": other.encrypt(POOR[1])})  # fmt: skip

    with make_sessionmaker(at_0006)() as session, pytest.raises(crypto.DecryptionError, match="another key"):
        session.execute(select(Person).where(Person.id == 1)).scalar_one()


def test_0007_stops_at_a_value_encrypted_with_another_key(database_url: str) -> None:
    sqlite_only(database_url, "at 0006 PostgreSQL's VARCHAR(18) cannot hold an encrypted value")
    other = crypto.DataCipher(crypto.decode_secret(crypto.new_secret()))
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0006")
        fill_at_0006(engine, declarant_id=other.encrypt(DECLARANT[1]))

        with pytest.raises(crypto.DecryptionError, match="another key"):
            upgrade(engine)

        assert current_revision(engine) == "0006"
        assert raw_id_numbers(engine)["persons"] == [(POOR[1], None), (ORDINARY[1], None)]
    finally:
        engine.dispose()


def test_the_helpline_db_upgrade_command_migrates_either_backend(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from actions import runtime
    from actions.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    try:
        assert main(["db", "upgrade"]) == 0
        assert main(["db", "upgrade"]) == 0  # again: nothing to do
    finally:
        runtime.reset()
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision(engine)
        assert tables(engine) == set(Base.metadata.tables)
    finally:
        engine.dispose()
    assert make_url(database_url).get_backend_name() in capsys.readouterr().out
