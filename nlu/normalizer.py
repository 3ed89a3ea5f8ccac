"""Text normalisation before tokenisation: traditional → simplified (OpenCC), full-width → half-width."""

from __future__ import annotations

import unicodedata
from typing import Any

from opencc import OpenCC
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.fingerprint import CodeFingerprint

# Full-width ASCII (！ to ～) and the ideographic space; Chinese punctuation such as 。、 stays as it is.
_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


class TextNormalizer:
    """One converter per process; OpenCC's dictionaries load once."""

    def __init__(self) -> None:
        self._opencc = OpenCC("t2s")

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text).translate(_WIDTH)
        return str(self._opencc.convert(text))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ChineseNormalizer(CodeFingerprint, GraphComponent):
    """Rewrites the message text in place, so every later component sees simplified, half-width text."""

    def __init__(self, normalize: TextNormalizer) -> None:
        self._normalize = normalize

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseNormalizer:
        return cls(TextNormalizer())

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str) and text:
                message.set(TEXT, self._normalize(text))
        return messages
