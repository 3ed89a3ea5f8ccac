"""齐惠保 service: terms from the knowledge base, premium by status, the estimate, enrollment and its status."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from actions.db.models import ChatIdentity, Enrollment, Household, Person
from actions.db.types import id_number_digest
from actions.services import insurance
from actions.services.insurance import (
    INPATIENT,
    SPECIAL_DRUGS,
    AmountChoice,
    OutsideRegionError,
    Standing,
    Terms,
    category_of,
    enroll,
    enrollments_of_chat,
    estimate,
    is_cancel,
    look_up,
    mark_paid,
    person_of_chat,
    policy_year,
    self_paid_amount,
)
from actions.services.knowledge import load_knowledge_base
from actions.services.regions import get_or_create_region
from nlu.amounts import find_amounts
from tests.conftest import ORDINARY_ID, POOR_ID, ZAOZHUANG_ID, make_id_number

UNKNOWN_ID = make_id_number("19900101", 77)


@pytest.fixture(scope="module")
def terms() -> Terms:
    return Terms.from_knowledge_base(load_knowledge_base())


def add_person(session: Session, name: str, id_number: str, *, poor: bool, city: str = "淄博市") -> Person:
    county = "淄川区" if city == "淄博市" else "山亭区"
    region = get_or_create_region(session, [city, county, "测试镇", "测试村"])
    household = Household(
        code=f"T-{id_number[-6:]}",
        region=region,
        status="脱贫户" if poor else "一般农户",
        is_registered_poor=poor,
        size=1,
    )
    person = Person(household=household, name=name, id_number=id_number, phone="13300002486")
    session.add(person)
    session.flush()
    return person


@pytest.fixture
def people(sessions: sessionmaker) -> sessionmaker:
    with sessions.begin() as session:
        add_person(session, "王志强", POOR_ID, poor=True)
        add_person(session, "刘立新", ORDINARY_ID, poor=False)
        add_person(session, "赵永刚", ZAOZHUANG_ID, poor=False, city="枣庄市")
    return sessions


def count_enrollments(sessions: sessionmaker) -> int:
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(Enrollment)).scalar_one())


def do_enroll(sessions: sessionmaker, terms: Terms, name: str, id_number: str, chat: str = "c1", year: int = 2026):
    return enroll(
        sessions,
        terms,
        name=name,
        id_number=id_number,
        phone="13300002486",
        year=year,
        channel="rest",
        channel_user_id=chat,
    )


# --- terms and premium ---------------------------------------------------------------------------------------------


def test_terms_come_from_the_knowledge_base_and_its_quote(terms: Terms) -> None:
    assert terms.premium(registered_poor=False) == Decimal(99)
    assert terms.premium(registered_poor=True) == Decimal(10)
    assert terms.deductible == Decimal(20000)
    assert terms.rate == Decimal("0.8")
    assert terms.cover == {INPATIENT: Decimal(1000000), SPECIAL_DRUGS: Decimal(1000000)}
    assert terms.total_cover == Decimal(2000000)
    quote = " ".join(s.quote for s in load_knowledge_base().policies["qihuibao"].sources)
    for figure in ("99元", "10元", "200万元", "100万元", "100万保额", "超出2万元部分再报销80%"):
        assert figure in quote


# --- estimate --------------------------------------------------------------------------------------------------------


def test_the_issue_example_is_24000_yuan(terms: Terms) -> None:
    result = estimate(terms, Decimal(50000))
    assert result.reimbursed == Decimal(24000)
    assert result.excess == Decimal(30000)
    assert not result.capped and not result.below_line


@pytest.mark.parametrize(
    ("self_paid", "reimbursed"),
    [
        ("0", "0"),
        ("19999.99", "0"),
        ("20000", "0"),
        ("20000.01", "0.01"),
        ("20001", "0.80"),
        ("1270000", "1000000"),  # exactly at the cap
        ("1270001", "1000000"),
        ("50000000", "1000000"),
    ],
)
def test_estimate_boundaries_at_the_line_and_the_cap(terms: Terms, self_paid: str, reimbursed: str) -> None:
    assert estimate(terms, Decimal(self_paid)).reimbursed == Decimal(reimbursed)


def test_below_the_line_nothing_is_reimbursed_and_it_says_so(terms: Terms) -> None:
    result = estimate(terms, Decimal(15000))
    assert result.below_line
    assert result.reimbursed == 0


def test_cap_applies_to_the_named_category(terms: Terms) -> None:
    result = estimate(terms, Decimal(3000000), SPECIAL_DRUGS)
    assert result.capped
    assert result.cap == Decimal(1000000)
    assert result.reimbursed == Decimal(1000000)
    assert result.uncapped == Decimal(2384000)


def test_negative_sums_are_refused(terms: Terms) -> None:
    with pytest.raises(ValueError):
        estimate(terms, Decimal(-1))


@pytest.mark.parametrize(
    ("text", "category"),
    [("住院花的", INPATIENT), ("门诊特药自己出的", SPECIAL_DRUGS), ("看病花的", None), ("住院加门诊的药", None)],
)
def test_category_is_read_from_the_message(text: str, category: str | None) -> None:
    assert category_of(text) == category


@pytest.mark.parametrize(
    ("text", "choice", "values"),
    [
        ("医保报完自己还要出5万,齐惠保能报多少?", AmountChoice.ONE, [50000]),
        ("超过2万的部分报80%,俺自己出了3万能报多少", AmountChoice.ONE, [30000]),
        ("99块钱的保险,自付8万能报多少", AmountChoice.ONE, [80000]),
        ("住院花了10万,医保报了6万,自己出4万", AmountChoice.ONE, [40000]),
        ("花了10万,报了6万", AmountChoice.SEVERAL, [100000, 60000]),
        ("自己出了好几万", AmountChoice.UNREADABLE, [None]),
        ("齐惠保能报多少", AmountChoice.NONE, []),
    ],
)
def test_the_self_paid_sum_is_picked_or_asked_for(text: str, choice: AmountChoice, values: list) -> None:
    found_choice, amounts = self_paid_amount(text, find_amounts(text))
    assert found_choice is choice
    assert [a.value for a in amounts] == [None if v is None else Decimal(v) for v in values]


# --- people and enrollment ---------------------------------------------------------------------------------------


def test_lookup_needs_the_name_to_match(people: sessionmaker) -> None:
    with people.begin() as session:
        assert look_up(session, POOR_ID, "王志强").standing is Standing.REGISTERED_POOR
        assert look_up(session, POOR_ID, "王 志强").standing is Standing.REGISTERED_POOR
        assert look_up(session, POOR_ID, "王志刚").standing is Standing.NAME_MISMATCH
        assert look_up(session, ORDINARY_ID, "刘立新").standing is Standing.ORDINARY
        assert look_up(session, ZAOZHUANG_ID, "赵永刚").standing is Standing.OUTSIDE
        assert look_up(session, UNKNOWN_ID, "孙丽").standing is Standing.NOT_FOUND


def test_registered_poor_pays_10_and_is_verified(people: sessionmaker, terms: Terms) -> None:
    result = do_enroll(people, terms, "王志强", POOR_ID)
    assert result.created
    assert result.enrollment.premium == Decimal(10)
    assert result.enrollment.verified
    assert result.enrollment.reference.startswith("QH2026-")
    assert result.bound


def test_ordinary_household_pays_99(people: sessionmaker, terms: Terms) -> None:
    result = do_enroll(people, terms, "刘立新", ORDINARY_ID)
    assert result.enrollment.premium == Decimal(99)
    assert result.enrollment.verified


def test_unknown_person_pays_99_unverified_and_is_not_bound(people: sessionmaker, terms: Terms) -> None:
    result = do_enroll(people, terms, "孙丽", UNKNOWN_ID)
    assert result.standing is Standing.NOT_FOUND
    assert result.enrollment.premium == Decimal(99)
    assert not result.enrollment.verified
    assert not result.bound
    with people() as session:
        assert session.execute(select(Enrollment.person_id)).scalar_one() is None


def test_household_outside_zibo_cannot_enroll(people: sessionmaker, terms: Terms) -> None:
    with pytest.raises(OutsideRegionError):
        do_enroll(people, terms, "赵永刚", ZAOZHUANG_ID)
    assert count_enrollments(people) == 0


def test_second_enrollment_in_the_same_year_returns_the_first(people: sessionmaker, terms: Terms) -> None:
    first = do_enroll(people, terms, "王志强", POOR_ID)
    second = do_enroll(people, terms, "王志强", POOR_ID, chat="someone-else")
    assert not second.created
    assert second.enrollment.reference == first.enrollment.reference
    assert count_enrollments(people) == 1
    next_year = do_enroll(people, terms, "王志强", POOR_ID, year=2027)
    assert next_year.created
    assert count_enrollments(people) == 2


def test_concurrent_enrollments_of_one_person_write_one_row(
    people: sessionmaker, terms: Terms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sessions look, find nothing and insert; the unique constraint lets one win, the other gets its row."""
    barrier = threading.Barrier(2)
    looked = []
    original = insurance._existing

    def existing_then_wait(session: Session, id_number: str, year: int) -> Enrollment | None:
        found = original(session, id_number, year)
        looked.append(found)
        if len(looked) <= 2:
            barrier.wait(timeout=10)  # neither inserts before both have looked
        return found

    monkeypatch.setattr(insurance, "_existing", existing_then_wait)
    results: list[insurance.EnrollmentResult] = []
    errors: list[Exception] = []

    def worker(chat: str) -> None:
        try:
            results.append(do_enroll(people, terms, "王志强", POOR_ID, chat=chat))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"chat-{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors, errors
    assert looked[:2] == [None, None]  # both really raced
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.enrollment.reference for r in results}) == 1
    assert count_enrollments(people) == 1


def test_enrollment_binds_the_chat_unless_it_is_bound_already(people: sessionmaker, terms: Terms) -> None:
    do_enroll(people, terms, "王志强", POOR_ID, chat="c1")
    with people() as session:
        person = person_of_chat(session, "rest", "c1")
        assert person is not None and person.name == "王志强" and person.registered_poor
    # The same chat enrolling a relative keeps its link to the first person.
    result = do_enroll(people, terms, "刘立新", ORDINARY_ID, chat="c1")
    assert result.created and not result.bound
    with people() as session:
        assert session.execute(select(func.count()).select_from(ChatIdentity)).scalar_one() == 1
        assert person_of_chat(session, "rest", "c1").name == "王志强"  # type: ignore[union-attr]


def test_status_shows_only_the_chat_users_own_enrollments(people: sessionmaker, terms: Terms) -> None:
    do_enroll(people, terms, "王志强", POOR_ID, chat="c1")
    do_enroll(people, terms, "孙丽", UNKNOWN_ID, chat="c2")
    with people() as session:
        assert [e.name for e in enrollments_of_chat(session, "rest", "c1")] == ["王志强"]
        assert [e.name for e in enrollments_of_chat(session, "rest", "c2")] == ["孙丽"]
        assert enrollments_of_chat(session, "rest", "c3") == []
        assert enrollments_of_chat(session, "telegram", "c1") == []


def test_linked_person_sees_an_enrollment_made_from_another_chat(people: sessionmaker, terms: Terms) -> None:
    do_enroll(people, terms, "王志强", POOR_ID, chat="c1")  # binds c1
    with people.begin() as session:
        found = select(Person.id).where(Person.id_number_hash == id_number_digest(ORDINARY_ID))
        person_id = session.execute(found).scalar_one()
        session.add(ChatIdentity(channel="rest", channel_user_id="c9", person_id=person_id))
    do_enroll(people, terms, "刘立新", ORDINARY_ID, chat="c1")  # a relative, enrolled from c1
    with people() as session:
        assert [e.name for e in enrollments_of_chat(session, "rest", "c9")] == ["刘立新"]


def test_mark_paid(people: sessionmaker, terms: Terms) -> None:
    reference = do_enroll(people, terms, "王志强", POOR_ID).enrollment.reference
    with people.begin() as session:
        assert mark_paid(session, "QH2026-NOSUCH") is None
        view = mark_paid(session, reference.lower())
        assert view is not None and view.paid
    with people() as session:
        assert enrollments_of_chat(session, "rest", "c1")[0].paid


def test_policy_year_is_configured_or_the_calendar_year() -> None:
    assert policy_year(dt.date(2026, 11, 23)) == 2026
    assert policy_year(dt.date(2026, 11, 23), configured=2027) == 2027


# --- cancellation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["取消", "算了", "不办了", "算了 俺不参保了", "先不弄了", "QUXIAO", "不填了 等俺孙子回来"]
)
def test_cancel_words_end_an_enrollment(text: str) -> None:
    assert is_cancel(text)


@pytest.mark.parametrize("text", ["王志强", "370399195007140044", "13300002486", "确认", "修改", "对"])
def test_answers_are_not_cancellations(text: str) -> None:
    assert not is_cancel(text)
