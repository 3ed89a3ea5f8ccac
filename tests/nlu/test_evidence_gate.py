from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.evidence_gate import EvidenceGate, content_tokens, known_ratio, letter_trigrams
from tests.nlu.helpers import tokenized


def message(words: list[str], intent: str | None = None, confidence: float = 0.95) -> Message:
    msg = tokenized(words)
    if intent:
        msg.set(INTENT, {"name": intent, "confidence": confidence})
    return msg


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def trained_gate(storage: LocalModelStorage) -> EvidenceGate:
    context = ExecutionContext(GraphSchema({}), "test")
    resource = Resource("gate")
    gate = EvidenceGate.create({**EvidenceGate.get_default_config()}, storage, resource, context)
    examples = [message(["你好", "啊"], "greet"), message(["俺", "要", "找", "干部"], "human_handoff")]
    for example in examples:
        example.set(INTENT, example.get(INTENT)["name"])
    gate.train(TrainingData(training_examples=examples))
    return EvidenceGate.load({**EvidenceGate.get_default_config()}, storage, resource, context)


def test_punctuation_and_emoji_are_not_content() -> None:
    assert content_tokens(message(["你好", "!", "😀", "Hi"])) == ["你好", "hi"]


def test_known_ratio_of_nothing_is_zero() -> None:
    assert known_ratio([], frozenset({"你好"})) == 0.0
    assert known_ratio(["你好", "周杰伦"], frozenset({"你好"})) == 0.5


def test_a_spelling_variant_of_a_known_pinyin_or_english_word_counts() -> None:
    vocabulary = frozenset({"bye", "xiexie", "8888888", "你好"})
    trigrams = letter_trigrams(vocabulary)
    assert trigrams == {"bye", "xie", "iex", "exi", "888"}
    assert known_ratio(["byebye", "xiexiexie", "8888"], vocabulary, trigrams=trigrams) == 1.0
    assert known_ratio(["zxcvbnm"], vocabulary, trigrams=trigrams) == 0.0
    assert known_ratio(["by"], vocabulary, trigrams=trigrams) == 0.0
    assert known_ratio(["byqwert"], vocabulary, trigrams=trigrams) == 0.0


def test_vocabulary_survives_persist_and_load(storage: LocalModelStorage) -> None:
    assert trained_gate(storage).vocabulary == frozenset({"你好", "啊", "俺", "要", "找", "干部"})


def test_known_message_keeps_its_confidence(storage: LocalModelStorage) -> None:
    [out] = trained_gate(storage).process([message(["俺", "找", "干部"], "human_handoff", 0.9)])
    assert out.get(INTENT)["confidence"] == pytest.approx(0.9)


def test_unknown_words_lower_the_confidence(storage: LocalModelStorage) -> None:
    [out] = trained_gate(storage).process([message(["zxcvbnm"], "thanks", 0.91)])
    assert out.get(INTENT) == {"name": "thanks", "confidence": 0.0}


def test_half_known_message_is_scaled_not_zeroed(storage: LocalModelStorage) -> None:
    [out] = trained_gate(storage).process([message(["你好", "周杰伦", "新歌", "啊"], "greet", 0.8)])
    assert out.get(INTENT)["confidence"] == pytest.approx(0.8)
    [out] = trained_gate(storage).process([message(["你好", "周杰伦", "新歌", "叫"], "greet", 0.8)])
    assert out.get(INTENT)["confidence"] == pytest.approx(0.8 * 0.25 / 0.5)


def test_emoji_only_message_gets_no_confidence(storage: LocalModelStorage) -> None:
    [out] = trained_gate(storage).process([message(["😀", "😀"], "greet", 0.99)])
    assert out.get(INTENT)["confidence"] == 0.0


def test_relabels_to_the_unknown_intent_below_the_bar(storage: LocalModelStorage) -> None:
    gate = trained_gate(storage)
    gate._config = {**gate._config, "unknown_intent": "out_of_scope", "relabel_below": 0.6}
    [out] = gate.process([message(["zxcvbnm"], "thanks", 0.91)])
    assert out.get(INTENT) == {"name": "out_of_scope", "confidence": 0.0}
    [out] = gate.process([message(["你好", "周杰伦", "新歌", "叫"], "greet", 0.95)])
    assert out.get(INTENT)["name"] == "out_of_scope"
    assert out.get(INTENT)["confidence"] == pytest.approx(0.95 * 0.5)


def test_keeps_the_pick_when_scaled_confidence_stays_high(storage: LocalModelStorage) -> None:
    gate = trained_gate(storage)
    gate._config = {**gate._config, "unknown_intent": "out_of_scope", "relabel_below": 0.3}
    [out] = gate.process([message(["你好", "周杰伦", "新歌", "叫"], "greet", 0.95)])
    assert out.get(INTENT) == {"name": "greet", "confidence": pytest.approx(0.475)}


def test_ranking_follows_the_relabelled_intent(storage: LocalModelStorage) -> None:
    gate = trained_gate(storage)
    gate._config = {**gate._config, "unknown_intent": "out_of_scope", "relabel_below": 0.6}
    msg = message(["zxcvbnm", "qwerty", "你好"], "thanks", 0.8)
    msg.set(INTENT_RANKING_KEY, [{"name": "thanks", "confidence": 0.8}, {"name": "out_of_scope", "confidence": 0.2}])
    [out] = gate.process([msg])
    assert [r["name"] for r in out.get(INTENT_RANKING_KEY)] == ["out_of_scope", "thanks"]
    assert out.get(INTENT_RANKING_KEY)[0] == out.get(INTENT)
    assert out.get(INTENT_RANKING_KEY)[1]["confidence"] == pytest.approx(0.8 * (1 / 3) / 0.5)


def test_ranking_is_scaled_with_the_intent(storage: LocalModelStorage) -> None:
    msg = message(["你好", "周杰伦", "新歌", "叫"], "greet", 0.8)
    msg.set(INTENT_RANKING_KEY, [{"name": "greet", "confidence": 0.8}, {"name": "thanks", "confidence": 0.2}])
    [out] = trained_gate(storage).process([msg])
    assert [r["confidence"] for r in out.get(INTENT_RANKING_KEY)] == pytest.approx([0.4, 0.1])
