from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.linear_intent import MODEL_FILE, LinearIntentClassifier
from tests.nlu.helpers import tokenized

TRAINING = {
    "greet": [["你好"], ["您好"], ["你", "好", "啊"], ["恁", "好"], ["早上", "好"], ["大姐", "好"]],
    "ask_policy": [["低保", "多少钱"], ["低保", "咋", "申请"], ["特困", "供养", "标准"], ["残疾", "补贴"],
                   ["雨露", "计划", "给", "啥"], ["齐惠保", "多少钱"]],
    "out_of_scope": [["明天", "下雨", "不"], ["电饭锅", "咋", "用"], ["讲", "个", "笑话"], ["彩票", "号码"],
                     ["今天", "几度"], ["红烧肉", "咋", "做"]],
}  # fmt: skip


def message(words: list[str], intent: str | None = None) -> Message:
    msg = tokenized(words)
    if intent:
        msg.set(INTENT, intent)
    return msg


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


@pytest.fixture
def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


@pytest.fixture
def featurizer(storage: LocalModelStorage, context: ExecutionContext) -> CountVectorsFeaturizer:
    config = {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char_wb", "max_ngram": 2}
    return CountVectorsFeaturizer.create(config, storage, Resource("cv"), context)


def training_data(featurizer: CountVectorsFeaturizer) -> TrainingData:
    data = TrainingData([message(words, intent) for intent, examples in TRAINING.items() for words in examples])
    featurizer.train(data)
    featurizer.process_training_data(data)
    return data


def featurized(featurizer: CountVectorsFeaturizer, words: list[str]) -> Message:
    [msg] = featurizer.process([message(words)])
    return msg


@pytest.fixture
def trained(
    storage: LocalModelStorage, context: ExecutionContext, featurizer: CountVectorsFeaturizer
) -> LinearIntentClassifier:
    resource = Resource("linear")
    config = {"calibration_folds": 3}
    LinearIntentClassifier.create(config, storage, resource, context).train(training_data(featurizer))
    return LinearIntentClassifier.load(config, storage, resource, context)


@pytest.mark.parametrize(
    ("words", "intent"),
    [(["低保", "咋", "领"], "ask_policy"), (["您", "好", "呀"], "greet"), (["后天", "下雨", "吗"], "out_of_scope")],
)
def test_a_saved_and_loaded_model_classifies_new_messages(
    trained: LinearIntentClassifier, featurizer: CountVectorsFeaturizer, words: list[str], intent: str
) -> None:
    [msg] = trained.process([featurized(featurizer, words)])
    ranking = msg.get(INTENT_RANKING_KEY)
    assert msg.get(INTENT)["name"] == intent == ranking[0]["name"]
    assert msg.get(INTENT)["confidence"] == ranking[0]["confidence"]
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0)
    assert {r["name"] for r in ranking} == set(TRAINING)


def test_unknown_characters_give_no_confident_pick(
    trained: LinearIntentClassifier, featurizer: CountVectorsFeaturizer
) -> None:
    [msg] = trained.process([featurized(featurizer, ["qzx", "🙃"])])
    assert msg.get(INTENT)["confidence"] < 0.8


def test_a_message_without_features_is_still_classified(trained: LinearIntentClassifier) -> None:
    [msg] = trained.process([Message(data={TEXT: ""})])
    assert msg.get(INTENT)["name"] in TRAINING


def test_without_a_saved_model_it_leaves_messages_alone(
    storage: LocalModelStorage, context: ExecutionContext, featurizer: CountVectorsFeaturizer
) -> None:
    classifier = LinearIntentClassifier.load({}, storage, Resource("never-trained"), context)
    [msg] = classifier.process([message(["你好"])])
    assert msg.get(INTENT) is None


def test_the_model_file_is_written_with_the_resource(
    trained: LinearIntentClassifier, storage: LocalModelStorage
) -> None:
    with storage.read_from(Resource("linear")) as directory:
        assert (directory / MODEL_FILE).stat().st_size > 0


def test_sentence_features_are_rasas_combined_sentence_features() -> None:
    """The fast path gives exactly the row Rasa's own (slower) combination gives, featurizers in pipeline order."""
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features

    from nlu.linear_intent import sentence_features

    msg = message(["低保", "咋", "申请"])
    for origin, width, seed in (("words", 5, 1), ("chars", 3, 2), ("pairs", 4, 3)):
        sentence = scipy.sparse.random(1, width, density=0.6, random_state=seed, format="coo")
        sequence = scipy.sparse.random(3, width, density=0.6, random_state=seed + 10, format="coo")
        msg.add_features(Features(sequence, "sequence", TEXT, origin))
        msg.add_features(Features(sentence, "sentence", TEXT, origin))
    msg.add_features(Features(scipy.sparse.coo_matrix([[9.0]]), "sentence", INTENT, "other attribute"))
    expected = msg.get_sparse_features(TEXT)[1].features.toarray()
    got = sentence_features([msg, message(["空"])], width=12)
    assert got.shape == (2, 12)
    assert (got[0].toarray() == expected).all()
    assert got[1].nnz == 0
