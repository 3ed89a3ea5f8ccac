from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from nlu.kb_features import KnowledgeBaseFeaturizer, alternation
from tests.nlu.helpers import tokenized


@pytest.fixture
def featurizer(tmp_path: Path) -> KnowledgeBaseFeaturizer:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    resource = Resource("kb_features")
    config = {**KnowledgeBaseFeaturizer.get_default_config(), "knowledge_base": str(PROJECT_ROOT / "data" / "kb")}
    KnowledgeBaseFeaturizer.create(config, storage, resource, context).train(TrainingData())
    return KnowledgeBaseFeaturizer.load(config, storage, resource, context)


def features(featurizer: KnowledgeBaseFeaturizer, words: list[str]) -> tuple[list[list[float]], list[float]]:
    [msg] = featurizer.process([tokenized(words)])
    sequence, sentence = msg.get_sparse_features(TEXT)
    assert sequence is not None and sentence is not None
    return sequence.features.toarray().tolist(), sentence.features.toarray()[0].tolist()


def test_longest_term_first() -> None:
    assert alternation(["低保", "农村低保", "a.b"]) == r"农村低保|a\.b|低保"


def test_a_named_programme_sets_the_feature_on_its_tokens(featurizer: KnowledgeBaseFeaturizer) -> None:
    sequence, sentence = features(featurizer, ["孝善", "养老", "咋", "弄"])
    assert sentence == [1.0]
    assert sequence == [[1.0], [1.0], [0.0], [0.0]]


def test_a_typo_alias_counts_and_case_is_ignored(featurizer: KnowledgeBaseFeaturizer) -> None:
    assert features(featurizer, ["俺", "能", "吃", "低宝", "不"])[1] == [1.0]
    assert features(featurizer, ["abcd", "分类", "是", "啥"])[1] == [1.0]


def test_other_topics_do_not(featurizer: KnowledgeBaseFeaturizer) -> None:
    assert features(featurizer, ["淘宝", "退货", "咋", "弄"])[1] == [0.0]
