"""scripts/eval_nlu.py on hand-made data: metrics, the two fallback views, entities, the baseline, the reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from actions.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import eval_nlu
from eval_nlu import FALLBACK, Example, Parsed


def example(intent: str, text: str = "", entities: frozenset[tuple[str, str]] = frozenset()) -> Example:
    return Example(text or intent, intent, entities, "heldout_test.yml")


def parsed(classifier: str, final: str | None = None, entities: frozenset[tuple[str, str]] = frozenset()) -> Parsed:
    """A parse whose classifier chose `classifier`; the bot routes on `final` (nlu_fallback: it asked back)."""
    return Parsed(classifier, 0.9, final or classifier, 0.6 if final == FALLBACK else 0.9, entities)


def test_intent_table_has_the_known_answers() -> None:
    table = eval_nlu.intent_table(["a", "a", "b", "b", "c"], ["a", "b", "b", "b", "c"])
    a, b, c = (table["intents"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (1.0, 0.5, pytest.approx(2 / 3), 2)
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8), 2)
    assert (c["precision"], c["recall"], c["f1"]) == (1.0, 1.0, 1.0)
    assert table["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1) / 3)
    assert table["accuracy"] == pytest.approx(0.8)
    assert table["support"] == 5
    assert table["confusion_pairs"] == [{"true": "a", "predicted": "b", "count": 1}]


def test_an_intent_that_is_only_predicted_gets_a_zero_row_and_lowers_macro_f1() -> None:
    table = eval_nlu.intent_table(["a", "a"], ["a", "x"])
    assert table["intents"]["x"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert table["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_classifier_view_is_the_best_intent_below_nlu_fallback() -> None:
    ranking = [
        {"name": FALLBACK, "confidence": 0.6},
        {"name": "greet", "confidence": 0.45},
        {"name": "thanks", "confidence": 0.3},
    ]
    fell_back: dict[str, Any] = {"intent": ranking[0], "intent_ranking": ranking, "entities": []}
    assert eval_nlu.classifier_view(fell_back) == ("greet", 0.45)
    answered: dict[str, Any] = {"intent": ranking[2], "intent_ranking": ranking[2:], "entities": []}
    assert eval_nlu.classifier_view(answered) == ("thanks", 0.3)
    p = eval_nlu.to_parsed(fell_back)
    assert (p.classifier_intent, p.final_intent, p.final_confidence) == ("greet", FALLBACK, 0.6)


def test_bot_view_counts_a_clarification_right_only_for_out_of_scope() -> None:
    examples = [example("out_of_scope"), example("greet"), example("greet", "x"), example("thanks")]
    predictions = [parsed("help", FALLBACK), parsed("greet", FALLBACK), parsed("thanks"), parsed("thanks")]
    table = eval_nlu.bot_table(examples, predictions)
    assert table["accuracy"] == pytest.approx(0.5)
    assert (table["fallbacks"], table["fallback_rate"], table["wrong_intents"]) == (2, 0.5, 1)
    oos = table["intents"]["out_of_scope"]
    assert (oos["precision"], oos["recall"]) == (0.5, 1.0)
    assert table["intents"]["greet"]["recall"] == 0.0
    assert {(p["true"], p["predicted"]) for p in table["confusion_pairs"]} == {("greet", FALLBACK), ("greet", "thanks")}
    # The classifier view of the same parses: right for the second greeting, wrong for the out-of-scope message.
    errors = eval_nlu.rasa_errors(examples, predictions)
    assert [(e["intent"], e["classifier"]["name"], e["bot"]["name"]) for e in errors] == [
        ("out_of_scope", "help", FALLBACK),
        ("greet", "greet", FALLBACK),
        ("greet", "thanks", "thanks"),
    ]


def test_entity_scores_compare_type_and_value_sets_of_the_annotated_types_only() -> None:
    gold = [
        frozenset({("policy", "dibao"), ("region", "淄博市")}),
        frozenset({("policy", "qihuibao")}),
        frozenset(),
    ]
    predicted = [
        frozenset({("policy", "dibao"), ("region", "枣庄市"), ("aspect", "amount")}),
        frozenset(),
        frozenset({("policy", "dibao")}),
    ]
    scores = eval_nlu.entity_scores(["m1", "m2", "m3"], gold, predicted)
    assert set(scores["types"]) == {"policy", "region"}  # nobody annotated an aspect
    policy, region = scores["types"]["policy"], scores["types"]["region"]
    assert (policy["precision"], policy["recall"], policy["f1"], policy["gold"], policy["predicted"]) == (
        0.5,
        0.5,
        0.5,
        2,
        2,
    )
    assert (region["precision"], region["recall"], region["f1"]) == (0.0, 0.0, 0.0)
    micro = scores["micro"]
    assert (micro["precision"], micro["recall"], micro["f1"], micro["gold"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3, 3))
    assert [e["text"] for e in scores["errors"]] == ["m1", "m2", "m3"]


def test_entity_scores_without_annotations_say_so() -> None:
    scores = eval_nlu.entity_scores(["m"], [frozenset()], [frozenset({("policy", "dibao")})])
    assert scores == {"types": {}, "micro": None, "note": "no annotated entities"}


def test_load_examples_reads_inline_annotations_with_and_without_a_value(tmp_path: Path) -> None:
    path = tmp_path / "heldout_x.yml"
    path.write_text(
        'version: "3.1"\n'
        "nlu:\n"
        "  - intent: ask_policy\n"
        "    examples: |\n"
        '      - [低宝]{"entity": "policy", "value": "dibao"}一年给多少\n'
        '      - [淄博](region)有没有[低保]{"entity": "policy", "value": "dibao"}\n'
        "  - intent: greet\n"
        "    examples: |\n"
        "      - 你好\n",
        encoding="utf-8",
    )
    examples = eval_nlu.load_examples([path])
    assert examples == [
        Example("低宝一年给多少", "ask_policy", frozenset({("policy", "dibao")}), "heldout_x.yml"),
        Example("淄博有没有低保", "ask_policy", frozenset({("region", "淄博"), ("policy", "dibao")}), "heldout_x.yml"),
        Example("你好", "greet", frozenset(), "heldout_x.yml"),
    ]


TRAINING = {
    "greet": ["你好", "您好", "老乡好", "你好啊", "大家好"],
    "thanks": ["谢谢", "多谢了", "谢谢你", "太感谢了", "谢谢啊"],
    "ask_policy": ["低保多少钱", "低保咋申请", "低保标准是多少", "低保给多少", "低保找谁"],
}


def test_baseline_learns_a_handful_of_examples() -> None:
    texts = [t for examples in TRAINING.values() for t in examples]
    intents = [i for i, examples in TRAINING.items() for _ in examples]
    model = eval_nlu.train_baseline(texts, intents)
    assert list(model.predict(["你好呀", "谢谢啦", "低保一年多少"])) == ["greet", "thanks", "ask_policy"]
    out_of_fold = eval_nlu.baseline_cv(texts, intents)
    assert len(out_of_fold) == len(texts)
    assert eval_nlu.intent_table(intents, out_of_fold)["accuracy"] >= 0.8


def test_rasa_cv_table_reads_rasa_intent_report(tmp_path: Path) -> None:
    def row(p: float, r: float, f: float, n: int) -> dict[str, Any]:
        return {"precision": p, "recall": r, "f1-score": f, "support": n, "confused_with": {}}

    report = {
        "greet": row(1.0, 0.5, 2 / 3, 2),
        "thanks": row(0.5, 1.0, 2 / 3, 1),
        "accuracy": 2 / 3,
        "macro avg": {"precision": 0.75, "recall": 0.75, "f1-score": 2 / 3, "support": 3},
        "weighted avg": {"precision": 0.83, "recall": 0.67, "f1-score": 2 / 3, "support": 3},
    }
    (tmp_path / "intent_report.json").write_text(json.dumps(report), encoding="utf-8")
    errors = [{"text": "嗨", "intent": "greet", "intent_prediction": {"name": "thanks", "confidence": 0.5}}]
    (tmp_path / "intent_errors.json").write_text(json.dumps(errors), encoding="utf-8")
    table = eval_nlu.rasa_cv_table(tmp_path)
    assert set(table["intents"]) == {"greet", "thanks"}
    assert table["intents"]["greet"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert (table["macro_f1"], table["accuracy"], table["support"]) == (2 / 3, 2 / 3, 3)
    assert table["confusion_pairs"] == [{"true": "greet", "predicted": "thanks", "count": 1}]


def gated(rasa: float, baseline: float, cv: float | None) -> list[str]:
    report = {
        "rasa_heldout_classifier": {"macro_f1": rasa},
        "baseline_heldout": {"macro_f1": baseline},
        "rasa_cv": None if cv is None else {"macro_f1": cv},
    }
    return eval_nlu.gate_failures(report, 0.95)


def test_gates() -> None:
    assert gated(0.96, 0.93, 0.955) == []
    assert gated(0.96, 0.93, None) == []
    assert len(gated(0.94, 0.93, 0.96)) == 1 and "0.9400 < 0.95" in gated(0.94, 0.93, 0.96)[0]
    assert "≤ the baseline's 0.9600" in gated(0.96, 0.96, 0.96)[0]
    assert "cross-validation macro-F1 0.9400 < 0.95" in gated(0.96, 0.93, 0.94)[0]
    assert len(gated(0.90, 0.91, 0.90)) == 3


def test_the_cross_validation_has_its_own_floor() -> None:
    report = {
        "rasa_heldout_classifier": {"macro_f1": 0.96},
        "baseline_heldout": {"macro_f1": 0.93},
        "rasa_cv": {"macro_f1": 0.947},
    }
    assert eval_nlu.gate_failures(report, 0.95, 0.945) == []
    assert eval_nlu.gate_failures(report, 0.95, 0.948) == ["Rasa 5-fold cross-validation macro-F1 0.9470 < 0.948"]


def test_reports_are_written(tmp_path: Path) -> None:
    examples = [
        example("greet", "你好", frozenset({("region", "淄博市")})),
        example("greet", "在吗"),
        example("thanks", "谢谢"),
        example("out_of_scope", "天气咋样"),
    ]
    predictions = [
        parsed("greet", entities=frozenset({("region", "淄博市")})),
        parsed("thanks"),
        parsed("thanks"),
        parsed("greet", FALLBACK),
    ]
    baseline = ["greet", "greet", "thanks", "greet"]
    settings = {
        "config": "config.yml",
        "nlu_data": "data/nlu",
        "training_messages": 15,
        "heldout": "heldout_*.yml",
        "model": "m.tar.gz",
        "cv_dir": None,
        "baseline": eval_nlu.BASELINE,
        "min_macro_f1": 0.95,
    }
    report = eval_nlu.build_report(settings, examples, predictions, baseline, None, None)
    eval_nlu.write_reports(tmp_path, report, examples, predictions, baseline)

    written = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert written["rasa_heldout_classifier"]["accuracy"] == 0.5
    assert written["rasa_heldout_bot"]["accuracy"] == 0.75
    assert written["baseline_heldout"]["accuracy"] == 0.75
    assert written["entities"]["micro"]["f1"] == 1.0
    assert written["heldout_files"] == {"heldout_test.yml": {"messages": 4, "annotated_entities": 1}}
    assert [e["text"] for e in written["rasa_errors"]] == ["在吗", "天气咋样"]
    assert len(written["gate_failures"]) == 2  # below 0.95, and not above the baseline
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| held-out accuracy | 0.500 | 0.750 | 0.750 |" in md
    assert "| greet | 2 | 0.500 | 0.500 | 0.500 | 0.667 | 0.667 | 1.000 | 0.800 | — | — |" in md
    assert "| region | 1 | 1 | 1.000 | 1.000 | 1.000 |" in md
    assert "Rasa (b) bot: greet → thanks 1" in md
    for name in ("confusion_heldout.png", "confusion_baseline_heldout.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    blind = eval_nlu.blind_tables(examples, predictions, ["greet", "thanks", "thanks", "out_of_scope"])
    with_blind = eval_nlu.build_report(settings, examples, predictions, baseline, None, None, blind)
    assert (
        with_blind["blind"]["rasa_classifier"]["accuracy"] == 0.5
        and with_blind["blind"]["baseline"]["accuracy"] == 0.75
    )
    assert len(with_blind["gate_failures"]) == 4  # the blind split is gated as the held-out one is
    assert "| blind split | Rasa (a) classifier | Rasa (b) bot | baseline |" in eval_nlu.markdown(with_blind)
