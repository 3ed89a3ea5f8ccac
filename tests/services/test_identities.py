from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from actions.db.models import Cadre, ChatIdentity, Household, Person, Region
from actions.services.identities import CadreError, Caller, add_cadre, cadres_covering, find_caller
from actions.services.regions import RegionError, get_or_create_region, split_path

TAIHE = "淄博市/淄川区/太河镇"


def make_regions(session: Session, *paths: str) -> None:
    for path in paths:
        get_or_create_region(session, split_path(path))


def cadre_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Cadre)).scalar_one())


def test_add_cadre_creates_the_cadre_and_its_chat_identity(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        cadre, created = add_cadre(session, name=" 李四 ", region_path=TAIHE, chat_id=" 42 ", admin=True)

    assert created is True
    with sessions() as session:
        stored = session.execute(select(Cadre)).scalar_one()
        assert (stored.id, stored.name, stored.region.path, stored.is_admin) == (cadre.id, "李四", TAIHE, True)
        identity = session.execute(select(ChatIdentity)).scalar_one()
        assert (identity.channel, identity.channel_user_id, identity.cadre_id, identity.person_id) == (
            "telegram",
            "42",
            cadre.id,
            None,
        )


def test_add_cadre_again_is_unchanged(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        first, _ = add_cadre(session, name="李四", region_path=TAIHE, chat_id="42")

    with sessions.begin() as session:
        again, created = add_cadre(session, name="李四", region_path="淄博市／淄川区／太河镇", chat_id="42")
        assert created is False
        assert again.id == first.id
        assert cadre_count(session) == 1


@pytest.mark.parametrize(
    ("name", "region"),
    [("王五", TAIHE), ("李四", "淄博市/淄川区")],
    ids=["other-name", "other-region"],
)
def test_chat_id_bound_to_another_cadre_is_refused(sessions: sessionmaker, name: str, region: str) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name="李四", region_path=TAIHE, chat_id="42")

    with pytest.raises(CadreError, match="42"), sessions.begin() as session:
        add_cadre(session, name=name, region_path=region, chat_id="42")

    with sessions() as session:
        assert cadre_count(session) == 1


def test_same_chat_id_on_another_channel_is_another_identity(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name="李四", region_path=TAIHE, chat_id="42")
        _, created = add_cadre(session, name="王五", region_path=TAIHE, chat_id="42", channel="rest")

    assert created is True


def test_chat_id_bound_to_a_person_is_refused(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        village = get_or_create_region(session, split_path(TAIHE + "/东峪村"))
        household = Household(code="T-0001", region=village, status="脱贫户")
        session.add(
            ChatIdentity(
                channel="telegram",
                channel_user_id="42",
                person=Person(household=household, name="张三", id_number="370399198001010015"),
            )
        )

    with pytest.raises(CadreError), sessions.begin() as session:
        add_cadre(session, name="张三", region_path=TAIHE, chat_id="42")


def test_unknown_region_is_refused_unless_created(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, "淄博市/淄川区")

    with pytest.raises(CadreError, match="淄博市/淄川区/不存在镇"), sessions.begin() as session:
        add_cadre(session, name="李四", region_path="淄博市/淄川区/不存在镇", chat_id="42")
    with sessions() as session:
        assert cadre_count(session) == 0

    with sessions.begin() as session:
        cadre, created = add_cadre(
            session, name="李四", region_path="淄博市/淄川区/新镇", chat_id="42", create_region=True
        )
        assert created is True
        region = cadre.region
        assert (region.path, region.level, region.parent.path) == ("淄博市/淄川区/新镇", "乡镇", "淄博市/淄川区")
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Region)).scalar_one() == 3


@pytest.mark.parametrize(
    "region_path",
    ["淄博市/淄川区/太河镇/东峪村/一组", "", " / / "],
    ids=["five-levels", "empty", "only-separators"],
)
def test_malformed_region_path_is_a_region_error(sessions: sessionmaker, region_path: str) -> None:
    with pytest.raises(RegionError), sessions.begin() as session:
        add_cadre(session, name="李四", region_path=region_path, chat_id="42", create_region=True)


@pytest.mark.parametrize(("name", "chat_id"), [("", "42"), ("  ", "42"), ("李" * 65, "42"), ("李四", " ")])
def test_empty_or_long_name_or_chat_id_is_refused(sessions: sessionmaker, name: str, chat_id: str) -> None:
    with pytest.raises(CadreError), sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name=name, region_path=TAIHE, chat_id=chat_id)


def test_find_caller_for_a_cadre(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name="李四", region_path=TAIHE, chat_id="42")

    with sessions() as session:
        caller = find_caller(session, "telegram", "42")

    assert caller.is_cadre is True
    assert caller == Caller(cadre_name="李四", jurisdiction=TAIHE)


def test_find_caller_for_a_person(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        village = get_or_create_region(session, split_path(TAIHE + "/东峪村"))
        person = Person(
            household=Household(code="T-0001", region=village, status="脱贫户"),
            name="张三",
            id_number="370399198001010015",
        )
        session.add(ChatIdentity(channel="rest", channel_user_id="u-1", person=person))

    with sessions() as session:
        caller = find_caller(session, "rest", "u-1")

    assert caller.is_cadre is False
    assert caller == Caller(person_name="张三", village=TAIHE + "/东峪村")


@pytest.mark.parametrize(("channel", "sender"), [("telegram", "43"), ("rest", "42")])
def test_unknown_sender_is_an_empty_caller(sessions: sessionmaker, channel: str, sender: str) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name="李四", region_path=TAIHE, chat_id="42")

    with sessions() as session:
        caller = find_caller(session, channel, sender)

    assert caller == Caller()
    assert caller.is_cadre is False


def test_cadres_covering_lists_the_most_local_first(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE, "淄博市/淄川区/岭子镇", "淄博市/沂源县", "枣庄市")
        for name, region, chat_id in [
            ("市干部", "淄博市", "1"),
            ("区干部", "淄博市/淄川区", "2"),
            ("镇干部", TAIHE, "3"),
            ("镇干部乙", TAIHE, "4"),
            ("岭子镇干部", "淄博市/淄川区/岭子镇", "5"),
            ("沂源县干部", "淄博市/沂源县", "6"),
            ("枣庄干部", "枣庄市", "7"),
        ]:
            add_cadre(session, name=name, region_path=region, chat_id=chat_id)

    with sessions() as session:
        covering = cadres_covering(session, TAIHE + "/某村")
        names = [(c.name, c.region.path) for c in covering]

    assert names == [
        ("镇干部", TAIHE),
        ("镇干部乙", TAIHE),
        ("区干部", "淄博市/淄川区"),
        ("市干部", "淄博市"),
    ]


def test_cadres_covering_a_region_without_cadres_is_empty(sessions: sessionmaker) -> None:
    with sessions.begin() as session:
        make_regions(session, TAIHE)
        add_cadre(session, name="镇干部", region_path=TAIHE, chat_id="3")

    with sessions() as session:
        assert cadres_covering(session, "枣庄市/山亭区") == []
        assert cadres_covering(session, "淄博市/淄川区") == []
