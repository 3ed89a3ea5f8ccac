from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.char_features import ContinuousCharFeaturizer, joined
from tests.nlu.helpers import tokenized


def test_tokens_are_joined_without_spaces_except_between_latin_words() -> None:
    assert joined(["成", "了", "没"]) == "成了没"
    assert joined(["qihuibao", "duoshao", "钱", "99", "块"]) == "qihuibao duoshao钱99块"


def trained(tmp_path: Path, examples: list[list[str]]) -> ContinuousCharFeaturizer:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    config = ContinuousCharFeaturizer.get_default_config()
    featurizer = ContinuousCharFeaturizer.create(config, storage, Resource("chars"), context)
    featurizer.train(TrainingData([tokenized(words) for words in examples]))
    return featurizer


def test_character_pairs_across_a_word_split_are_features(tmp_path: Path) -> None:
    featurizer = trained(tmp_path, [["成了", "没"], ["低保", "标准"]])
    vocabulary = featurizer.vectorizers[TEXT].vocabulary_
    assert "了没" in vocabulary and "保标" in vocabulary  # pairs across the split
    assert not any(" " in gram for gram in vocabulary)
    [message] = featurizer.process([tokenized(["成", "了没"])])
    sequence, sentence = message.get_sparse_features(TEXT)
    assert sequence is not None and sentence is not None
    assert sequence.features.shape[0] == 2  # one row per token, as Rasa expects
    row = sentence.features.toarray()[0]
    assert row[vocabulary["成了"]] == 1  # seen although Jieba split 成 | 了没
    assert row[vocabulary["了没"]] == 1
