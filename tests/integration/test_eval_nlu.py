"""scripts/eval_nlu.py's held-out and baseline path on the real held-out files, with the test model, no CV, no gates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from actions.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import eval_nlu

pytestmark = pytest.mark.integration


def test_heldout_and_baseline_reports(test_model: Path, tmp_path: Path) -> None:
    args = eval_nlu.parse_args(["--model", str(test_model), "--skip-cv", "--no-gate", "--out", str(tmp_path)])
    assert eval_nlu.run(args) == 0

    heldout = eval_nlu.load_examples(sorted((PROJECT_ROOT / "tests" / "nlu").glob("heldout_*.yml")))
    intents = {e.intent for e in heldout}
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    tables = [report[k] for k in ("rasa_heldout_classifier", "rasa_heldout_bot", "baseline_heldout")]
    for table in tables:
        assert table["support"] == len(heldout)
        assert intents <= set(table["intents"])
        assert sum(row["support"] for row in table["intents"].values()) == len(heldout)
        scores = [table["macro_f1"], table["accuracy"]]
        scores += [row[k] for row in table["intents"].values() for k in ("precision", "recall", "f1")]
        assert all(0 <= s <= 1 for s in scores)
        # Far below the quality bar (tests/integration/test_nlu_heldout.py), but a mislabelled evaluation fails it.
        assert table["accuracy"] > 0.6
    assert report["rasa_cv"] is None and report["baseline_cv"] is None
    blind = eval_nlu.load_examples(sorted((PROJECT_ROOT / "tests" / "nlu" / "blind").glob("*.yml")))
    assert report["blind"]["rasa_classifier"]["support"] == len(blind) >= 300
    assert report["blind"]["baseline"]["accuracy"] > 0.6 and report["blind"]["rasa_classifier"]["accuracy"] > 0.6
    assert report["settings"]["min_macro_f1"] == 0.95

    # The listed errors agree with the accuracies of both views.
    classifier, bot = report["rasa_heldout_classifier"], report["rasa_heldout_bot"]
    errors = report["rasa_errors"]
    assert sum(e["classifier"]["name"] != e["intent"] for e in errors) == round(
        len(heldout) * (1 - classifier["accuracy"])
    )
    fallbacks = sum(e["bot"]["name"] == eval_nlu.FALLBACK for e in errors)
    assert fallbacks <= bot["fallbacks"] and 0 <= bot["fallback_rate"] <= 1
    wrong = sum(e["bot"]["name"] not in (e["intent"], eval_nlu.FALLBACK) for e in errors)
    assert wrong == bot["wrong_intents"]

    annotated = sum(len(e.entities) for e in heldout)
    entities = report["entities"]
    if annotated:
        assert entities["micro"]["gold"] == annotated
        assert all(0 <= t[k] <= 1 for t in entities["types"].values() for k in ("precision", "recall", "f1"))
    else:
        assert entities["micro"] is None

    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"| {intent} | " in md for intent in intents)
    for name in ("confusion_heldout.png", "confusion_baseline_heldout.png"):
        assert (tmp_path / name).stat().st_size > 10_000
