from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.services.knowledge import load_knowledge_base
from actions.settings import PROJECT_ROOT
from nlu.normalizer import ChineseNormalizer, TextNormalizer
from nlu.policy_entities import PolicyEntityExtractor


@pytest.fixture(scope="module")
def extractor(tmp_path_factory: pytest.TempPathFactory) -> PolicyEntityExtractor:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    context = ExecutionContext(GraphSchema({}), "test")
    config = {"knowledge_base": str(PROJECT_ROOT / "data" / "kb")}
    resource = Resource("policy_entities")
    PolicyEntityExtractor.create(config, storage, resource, context).train(TrainingData())
    return PolicyEntityExtractor.load(config, storage, resource, context)


def entities(extractor: PolicyEntityExtractor, text: str) -> list[tuple[str, str, str]]:
    message = Message(data={TEXT: text})
    extractor.process([message])
    return [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in message.get(ENTITIES, [])]


def test_policy_region_and_aspect(extractor: PolicyEntityExtractor) -> None:
    assert entities(extractor, "俺是山亭的 低保一年给多少钱") == [
        ("region", "枣庄市/山亭区", "山亭"),
        ("policy", "dibao", "低保"),
        ("aspect", "amount", "一年给"),
    ]


def test_typo_aliases_map_to_one_policy(extractor: PolicyEntityExtractor) -> None:
    assert [v for e, v, _ in entities(extractor, "低宝咋申请") if e == "policy"] == ["dibao"]
    assert [v for e, v, _ in entities(extractor, "齐慧保") if e == "policy"] == ["qihuibao"]


def test_offsets_survive_spaces(extractor: PolicyEntityExtractor) -> None:
    assert ("policy", "yulu", "雨露计划") in entities(extractor, "请问 雨露计划 是啥")


def test_every_alias_of_every_entry_is_found(extractor: PolicyEntityExtractor) -> None:
    kb = load_knowledge_base()
    misses = [
        (p.id, alias)
        for p in kb.policies.values()
        for alias in p.aliases
        if p.id not in [v for e, v, _ in entities(extractor, f"请问{alias}怎么办") if e == "policy"]
    ]
    assert not misses


def test_nothing_found_in_unrelated_text(extractor: PolicyEntityExtractor) -> None:
    assert [e for e in entities(extractor, "今天天气咋样") if e[0] == "policy"] == []


def test_normalizer_makes_traditional_and_full_width_text_match() -> None:
    normalize = TextNormalizer()
    assert normalize("農村低保標準是多少？") == "农村低保标准是多少?"
    assert normalize("ＡＢＣ１２３　齊惠保") == "ABC123 齐惠保"
    message = Message(data={TEXT: "雨露計劃資助誰"})
    ChineseNormalizer(normalize).process([message])
    assert message.get(TEXT) == "雨露计划资助谁"
