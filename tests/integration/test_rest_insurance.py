"""齐惠保 over the REST channel: people imported with `helpline import households` enroll at their own price."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from actions import crypto
from actions.cli import main
from actions.db.models import Enrollment
from actions.db.session import make_engine, make_sessionmaker
from actions.db.types import id_number_digest
from actions.launcher import post_message
from tests.conftest import HouseholdFiles, make_id_number
from tests.integration.conftest import SERVER_DATA_KEY

pytestmark = pytest.mark.integration

POOR = ("孙桂芝", make_id_number("19560312", 301), "13900001111")
ORDINARY = ("周建军", make_id_number("19680905", 303), "13900002222")
TWICE = ("钱玉兰", make_id_number("19590417", 305), "13900003333")
REFERENCE = re.compile(r"QH\d{4}-[2-9A-Z]{6}")


def texts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts)


def payloads(parts: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for p in parts for b in p.get("buttons") or []]


@pytest.fixture(scope="module")
def imported(server_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two households imported into the servers' database with the CLI, as an administrator would."""
    files = HouseholdFiles(tmp_path_factory.mktemp("import"))
    rows = [
        files.row(户编号="IT-POOR", 姓名=POOR[0], 身份证号=POOR[1], 类别="脱贫户", 是否建档立卡="是"),
        files.row(户编号="IT-ORD", 姓名=ORDINARY[0], 身份证号=ORDINARY[1], 类别="一般农户", 是否建档立卡="否"),
        files.row(户编号="IT-TWICE", 姓名=TWICE[0], 身份证号=TWICE[1], 类别="脱贫户", 是否建档立卡="是"),
    ]
    path = files.csv(rows)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", server_db)
        env.setenv("HELPLINE_DATA_KEY", SERVER_DATA_KEY)
        assert main(["import", "households", str(path)]) == 0
    yield server_db


def enrollments_of(database_url: str, id_number: str) -> list[Enrollment]:
    """The servers' enrollments of one 身份证号, looked up by its hash under the servers' data key."""
    previous = crypto.current()
    crypto.configure(crypto.DataCipher(crypto.decode_secret(SERVER_DATA_KEY)))
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            found = select(Enrollment).where(Enrollment.id_number_hash == id_number_digest(id_number))
            return list(session.execute(found).scalars())
    finally:
        engine.dispose()
        crypto.configure(previous)


def enroll_over_rest(rasa_url: str, sender: str, person: tuple[str, str, str], opener: str) -> tuple[str, str]:
    """Walk the form; returns (the confirmation step's text, the final reply's text)."""
    name, id_number, phone = person
    assert "姓名" in texts(post_message(rasa_url, sender, opener))
    asked_id = texts(post_message(rasa_url, sender, name))
    assert "身份证号" in asked_id and "为啥要身份证号" in asked_id
    assert "手机号" in texts(post_message(rasa_url, sender, id_number))
    confirm = post_message(rasa_url, sender, phone)
    assert payloads(confirm) == ["确认", "修改", "取消"]
    done = texts(post_message(rasa_url, sender, "确认"))
    return texts(confirm), done


def test_registered_poor_person_enrolls_for_10_yuan(rasa_url: str, imported: str) -> None:
    confirm, done = enroll_over_rest(rasa_url, "it-enroll-poor", POOR, "俺想在这报个齐惠保")
    assert "<b>10 元</b>" in confirm and POOR[1] not in confirm
    assert "参保登记好了" in done and "<b>10 元</b>" in done
    assert REFERENCE.search(done)
    status = texts(post_message(rasa_url, "it-enroll-poor", "俺那个齐惠保成了没"))
    assert REFERENCE.search(status).group() == REFERENCE.search(done).group()  # type: ignore[union-attr]
    assert "还没交" in status
    # The chat is now linked to her: the price she is quoted is her own, without asking who she is.
    quote = texts(post_message(rasa_url, "it-enroll-poor", "齐惠保俺一年得交多少"))
    assert f"{POOR[0]}家是建档立卡贫困户" in quote and "<b>10 元</b>" in quote


def test_ordinary_household_enrolls_for_99_yuan(rasa_url: str, imported: str) -> None:
    confirm, done = enroll_over_rest(rasa_url, "it-enroll-ordinary", ORDINARY, "/enroll_insurance")
    assert "<b>99 元</b>" in confirm
    assert "<b>99 元</b>" in done and REFERENCE.search(done)
    [row] = enrollments_of(imported, ORDINARY[1])
    assert row.premium == 99 and row.verified


def test_second_enrollment_returns_the_first_reference(rasa_url: str, imported: str) -> None:
    _, first = enroll_over_rest(rasa_url, "it-enroll-twice-1", TWICE, "/enroll_insurance")
    reference = REFERENCE.search(first).group()  # type: ignore[union-attr]
    sender = "it-enroll-twice-2"  # another chat, say her son's phone
    post_message(rasa_url, sender, "/enroll_insurance")
    post_message(rasa_url, sender, TWICE[0])
    again = texts(post_message(rasa_url, sender, TWICE[1]))
    assert "已经登记过了" in again
    assert REFERENCE.search(again).group() == reference  # type: ignore[union-attr]
    assert len(enrollments_of(imported, TWICE[1])) == 1


def test_wrong_id_number_then_cancel_writes_nothing_and_the_chat_goes_on(rasa_url: str, imported: str) -> None:
    sender = "it-enroll-cancel"
    post_message(rasa_url, sender, "/enroll_insurance")
    post_message(rasa_url, sender, "吴秀兰")
    wrong = texts(post_message(rasa_url, sender, "370399195603120011"))
    assert "校验码" in wrong
    assert "好的,这次不办了" in texts(post_message(rasa_url, sender, "算了 不办了"))
    assert "5220" in texts(post_message(rasa_url, sender, "低保标准是多少"))
    engine = make_engine(imported)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.execute(select(Enrollment).where(Enrollment.name == "吴秀兰")).first() is None
    finally:
        engine.dispose()


def test_estimate_over_rest(rasa_url: str) -> None:
    text = texts(post_message(rasa_url, "it-estimate", "医保报完自己还要出5万,齐惠保能报多少?"))
    assert "24000" in text and "(50000 − 20000)× 80%" in text
