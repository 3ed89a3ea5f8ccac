"""An NLU component that stops the classifier from being confident about words it has never seen.

An intent classifier can give some intent a high confidence for keyboard mashing, emoji or a topic absent
from the training data (DIET once said "zxcvbnm" → thanks 0.91). This component, placed after the intent
classifier and the entity extractors and before FallbackClassifier, scales the top intent's confidence by
how much of the message is made of tokens seen in training or inside an extracted entity. With too little
known text, the confidence drops below the fallback threshold and the bot asks for clarification instead of
guessing. With `unknown_intent` set, such a message is labelled with that intent (out_of_scope) rather than
with the classifier's guess, and the intent ranking is rewritten to match, so every reader of the parse (the
FallbackClassifier, `rasa test nlu`) sees one prediction.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.fingerprint import CodeFingerprint

_CONTENT = re.compile(r"[0-9A-Za-z\u3400-\u9fff]")
_HAN = re.compile(r"[\u3400-\u9fff]+")
_LETTERS = re.compile(r"[0-9a-z]+")
VOCABULARY_FILE = "vocabulary.json"


def content_tokens(message: Message) -> list[str]:
    """The message's tokens that carry letters, digits or Chinese characters (not punctuation or emoji)."""
    return [t.text.lower() for t in message.get(TOKENS_NAMES[TEXT]) or [] if _CONTENT.search(t.text)]


def entity_tokens(message: Message) -> set[str]:
    """Content tokens inside an extracted entity (a policy or place name from the knowledge base)."""
    spans = [(e["start"], e["end"]) for e in message.get(ENTITIES) or [] if "start" in e and "end" in e]
    return {
        t.text.lower()
        for t in message.get(TOKENS_NAMES[TEXT]) or []
        if _CONTENT.search(t.text) and any(t.start < end and start < t.end for start, end in spans)
    }


def han_characters(words: frozenset[str]) -> frozenset[str]:
    """The characters of the all-Chinese words."""
    return frozenset(ch for word in words if _HAN.fullmatch(word) for ch in word)


def letter_trigrams(words: frozenset[str]) -> frozenset[str]:
    """The three-character pieces of the words written in letters and digits (pinyin, English, numbers)."""
    return frozenset(word[i : i + 3] for word in words if _LETTERS.fullmatch(word) for i in range(len(word) - 2))


def _familiar_letters(token: str, trigrams: frozenset[str]) -> bool:
    """At least half of a letters-and-digits token's trigrams were seen (byebye, haodehaode; not zxcvbnm)."""
    if not _LETTERS.fullmatch(token) or len(token) < 3:
        return False
    pieces = [token[i : i + 3] for i in range(len(token) - 2)]
    return sum(p in trigrams for p in pieces) * 2 >= len(pieces)


def known_ratio(
    tokens: list[str],
    vocabulary: frozenset[str],
    characters: frozenset[str] = frozenset(),
    trigrams: frozenset[str] = frozenset(),
) -> float:
    """The share of tokens seen in training, or made of familiar pieces.

    Jieba joins common phrases into one token (非常感谢), so a new phrase of familiar characters is not
    evidence of gibberish; a Chinese word counts when each of its characters was seen. A pinyin or English
    token counts when at least half of its character trigrams were seen (byebye, xiexiexie);
    keyboard mashing shares almost none. Anything else must match a whole training token.
    """
    if not tokens:
        return 0.0
    known = [
        t in vocabulary or (_HAN.fullmatch(t) is not None and set(t) <= characters) or _familiar_letters(t, trigrams)
        for t in tokens
    ]
    return sum(known) / len(tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class EvidenceGate(CodeFingerprint, GraphComponent, IntentClassifier):
    """Scales intent confidence by the share of known tokens (full confidence at `min_known_ratio`)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # unknown_intent: when the scaled confidence falls below relabel_below, the message is labelled with
        # this intent instead (it is not evidence for the classifier's pick); None keeps the pick.
        return {"min_known_ratio": 0.5, "unknown_intent": None, "relabel_below": 0.6}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: frozenset[str] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._use_vocabulary(vocabulary or frozenset())

    def _use_vocabulary(self, vocabulary: frozenset[str]) -> None:
        """The training tokens, and what is derived from them once (not per message)."""
        self.vocabulary = vocabulary
        self.characters = han_characters(vocabulary)
        self.trigrams = letter_trigrams(vocabulary)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EvidenceGate:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary: set[str] = set()
        for example in training_data.intent_examples:
            vocabulary.update(content_tokens(example))
        self._use_vocabulary(frozenset(vocabulary))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(
                json.dumps(sorted(self.vocabulary), ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> EvidenceGate:
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            words = []
        return cls(config, model_storage, resource, frozenset(words))

    def process(self, messages: list[Message]) -> list[Message]:
        floor = float(self._config["min_known_ratio"])
        for message in messages:
            intent = message.get(INTENT)
            if not intent or not intent.get("name"):
                continue
            known = self.vocabulary | entity_tokens(message)
            ratio = known_ratio(content_tokens(message), known, self.characters, self.trigrams)
            evidence = min(1.0, ratio / floor) if floor else 1.0
            if evidence < 1.0:
                self._scale(message, intent, evidence)
        return messages

    def _scale(self, message: Message, intent: dict[str, Any], evidence: float) -> None:
        """Scale the intent and its ranking by the evidence; relabel a weak pick as the unknown intent.

        The ranking stays consistent with the intent, so whatever reads it (FallbackClassifier's ambiguity
        check, `rasa test nlu` undoing a fallback) sees the same prediction as the intent.
        """
        scaled = dict(intent, **{PREDICTED_CONFIDENCE_KEY: intent[PREDICTED_CONFIDENCE_KEY] * evidence})
        ranking = [
            dict(r, **{PREDICTED_CONFIDENCE_KEY: r[PREDICTED_CONFIDENCE_KEY] * evidence})
            for r in message.get(INTENT_RANKING_KEY) or []
        ]
        unknown = self._config.get("unknown_intent")
        if unknown and scaled[PREDICTED_CONFIDENCE_KEY] < float(self._config["relabel_below"]):
            scaled[INTENT_NAME_KEY] = unknown
            ranking = [dict(scaled), *(r for r in ranking if r.get(INTENT_NAME_KEY) != unknown)]
        message.set(INTENT, scaled, add_to_output=True)
        if ranking:
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
