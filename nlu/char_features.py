"""Character n-grams of the whole message, across Jieba's word boundaries.

Rasa's CountVectorsFeaturizer joins a message's tokens with spaces before counting character n-grams, so with
`char_wb` no n-gram crosses a word boundary, and with `char` the crossing ones contain a space. Chinese is
written without spaces, and Jieba often splits a villager's message where no word boundary is (成了没 → 成 了没,
低宝 → 低 宝), so the character pairs that span its splits carry much of what the message means. This
featurizer counts n-grams over the tokens joined back without spaces (a space is kept only between two Latin
or digit tokens: "qihuibao duoshao"). Sequence features stay one row per token, as Rasa expects.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

from nlu.fingerprint import CodeFingerprint


def joined(tokens: list[str]) -> str:
    """The tokens as one string: no space between them unless both sides are Latin letters or digits."""
    text = ""
    for token in tokens:
        if text and text[-1].isascii() and text[-1].isalnum() and token[:1].isascii() and token[:1].isalnum():
            text += " "
        text += token
    return text


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ContinuousCharFeaturizer(CodeFingerprint, CountVectorsFeaturizer):
    """CountVectorsFeaturizer (analyzer `char`) whose vocabulary and sentence features see the unspaced text."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char", "min_ngram": 1, "max_ngram": 2}

    @staticmethod
    def _convert_attribute_tokens_to_texts(attribute_tokens: dict[str, list[list[str]]]) -> dict[str, list[str]]:
        return {attribute: [joined(tokens) for tokens in lists] for attribute, lists in attribute_tokens.items()}

    def _create_features(
        self, attribute: str, all_tokens: list[list[str]]
    ) -> tuple[list[scipy.sparse.spmatrix | None], list[scipy.sparse.spmatrix | None]]:
        vectorizer = self.vectorizers.get(attribute)
        if not vectorizer:
            return [None], [None]
        sequence_features: list[scipy.sparse.spmatrix | None] = []
        sentence_features: list[scipy.sparse.spmatrix | None] = []
        for tokens in all_tokens:
            if not tokens:
                sequence_features.append(None)
                sentence_features.append(None)
                continue
            sequence = vectorizer.transform(tokens)
            sequence.sort_indices()
            sequence_features.append(sequence.tocoo())
            if attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                sentence = vectorizer.transform([joined(tokens)])
                sentence.sort_indices()
                sentence_features.append(sentence.tocoo())
            else:
                sentence_features.append(None)
        return sequence_features, sentence_features
