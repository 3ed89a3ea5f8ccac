from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from actions.db.migrate import alembic_config, current_revision, downgrade, upgrade
from actions.db.models import Base
from actions.db.session import make_engine

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
        "uq_enrollments_id_number_product_policy_year",
        "uq_enrollments_reference",
    }
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("persons")} == {"households"}


def test_enrollment_rows_written_before_0002_get_a_reference(engine: Engine) -> None:
    downgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO enrollments (product, policy_year, name, id_number, phone, premium, verified, created_at)"
                " VALUES ('qihuibao', 2026, '测试', '370399198001010015', '13800138000', 99, 0, '2026-01-01')"
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
