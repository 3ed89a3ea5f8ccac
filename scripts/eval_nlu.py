"""The full NLU evaluation of issue 8: held-out split, cross-validation, entities and a baseline, with gates.

    python scripts/eval_nlu.py [--cv-dir var/eval-nlu/cv | --skip-cv] [--model PATH] [--out var/eval-nlu]
                               [--min-macro-f1 0.95] [--min-cv-macro-f1 0.945]
                               [--no-gate]

`make eval-nlu` first runs Rasa's seeded 5-fold cross-validation into var/eval-nlu/cv, then this script, which

- trains an NLU model on all of data/nlu with config.yml (the global generators seeded as scripts/seeded_rasa.py
  does), unless --model names one, and parses every held-out message (tests/nlu/heldout_*.yml, never trained on);
- scores intents in two views, because the FallbackClassifier's nlu_fallback is neither right nor wrong by itself:
  the classifier view takes the best intent below nlu_fallback (what the intent classifier chose; Rasa's own
  `rasa test nlu` scores the same way), the bot view takes the intent the bot routes on, with nlu_fallback (a
  clarification with buttons) scored as out_of_scope: right for out-of-scope messages, a miss for the others;
- scores entities as sets of (type, value) per message against the annotations of the held-out files;
- trains a baseline, character n-gram tf-idf + logistic regression, on the same training messages, and scores
  it on the same held-out split and by its own 5-fold cross-validation;
- writes report.json, report.md, confusion_heldout.png and confusion_baseline_heldout.png to --out, and fails
  (exit 1) with one line per missed gate: macro-F1 (classifier view) on the held-out or the blind split below
  --min-macro-f1 or not above the baseline's there, cross-validation macro-F1 below --min-cv-macro-f1.

The splits are the measure of how the bot does on messages nobody tuned it for; the cross-validation scores the
training data against itself, and the examples added for the hard borders between intents lower it. Its gate is a
floor against regressions (see README: NLU accuracy).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
SEED = 0
FOLDS = 5
# Chosen by the baseline's own 5-fold cross-validation on data/nlu, never on the held-out split: character 1–3-grams
# scored 0.937 macro-F1, 1–4-grams 0.934.
BASELINE = "tf-idf of char_wb 1–3-grams (sublinear tf) + logistic regression (C = 10, lbfgs, max_iter 2000)"
VIEWS = {
    "classifier": "the intent classifier's choice: the best-ranked intent other than nlu_fallback "
    "(as `rasa test nlu` scores; the gate is on this view)",
    "bot": "what the bot routes on: the final intent, nlu_fallback (a clarification with buttons) scored as "
    "out_of_scope, so it is right for out-of-scope messages and a miss for all others",
}
TOP_PAIRS = 10

Entities = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Example:
    """A labelled message: its intent and its annotated (entity type, value) pairs."""

    text: str
    intent: str
    entities: Entities
    source: str


@dataclass(frozen=True)
class Parsed:
    """What the model made of one message, in both views, and the entities it found."""

    classifier_intent: str
    classifier_confidence: float
    final_intent: str
    final_confidence: float
    entities: Entities


def entity_pairs(entities: Iterable[dict[str, Any]]) -> Entities:
    """(type, value) pairs; Rasa's loader gives an annotation without an explicit value its text as value."""
    return frozenset((str(e["entity"]), str(e["value"])) for e in entities)


def load_examples(paths: Sequence[Path]) -> list[Example]:
    """The labelled messages of Rasa NLU files, read with Rasa's loader (inline entity annotations included)."""
    from rasa.shared.nlu.training_data.loading import load_data

    return [
        Example(m.get("text"), m.get("intent"), entity_pairs(m.get("entities") or []), path.name)
        for path in paths
        for m in load_data(str(path)).nlu_examples
    ]


def classifier_view(parse: dict[str, Any]) -> tuple[str, float]:
    """The best-ranked intent other than nlu_fallback, and its confidence: the classifier's choice."""
    for entry in parse.get("intent_ranking") or []:
        if entry["name"] != FALLBACK:
            return str(entry["name"]), float(entry["confidence"])
    return str(parse["intent"]["name"]), float(parse["intent"]["confidence"])


def bot_label(final_intent: str) -> str:
    """The label the bot view scores: a clarification (nlu_fallback) counts as out_of_scope."""
    return OUT_OF_SCOPE if final_intent == FALLBACK else final_intent


def to_parsed(parse: dict[str, Any]) -> Parsed:
    intent, confidence = classifier_view(parse)
    return Parsed(
        classifier_intent=intent,
        classifier_confidence=confidence,
        final_intent=str(parse["intent"]["name"]),
        final_confidence=float(parse["intent"]["confidence"]),
        entities=entity_pairs(parse.get("entities") or []),
    )


def intent_table(true: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Per-intent precision, recall, F1 and support, macro-F1 and accuracy.

    The intents are those of either list, as in scikit-learn's classification_report (and so in Rasa's
    intent_report.json): an intent that is only ever predicted gets a row with support 0 and F1 0.
    """
    labels = sorted(set(true) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    intents = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    return {
        "macro_f1": float(np.mean(f1)),
        "accuracy": sum(t == p for t, p in zip(true, predicted, strict=True)) / len(true),
        "support": len(true),
        "intents": intents,
        "confusion_pairs": confusion_pairs(true, predicted),
    }


def confusion_pairs(true: Sequence[str], predicted: Sequence[str]) -> list[dict[str, Any]]:
    """(true, predicted) pairs of the misses, most frequent first."""
    pairs = Counter((t, p) for t, p in zip(true, predicted, strict=True) if t != p)
    return [{"true": t, "predicted": p, "count": n} for (t, p), n in sorted(pairs.items(), key=lambda x: (-x[1], x[0]))]


def bot_table(examples: Sequence[Example], parsed: Sequence[Parsed]) -> dict[str, Any]:
    """The bot view's intent table, with how often it asked back and how often it answered a wrong intent.

    Its confusion pairs name nlu_fallback as such: "→ out_of_scope" would hide that the bot asked back.
    """
    true = [e.intent for e in examples]
    final = [p.final_intent for p in parsed]
    table = intent_table(true, [bot_label(f) for f in final])
    missed = [(t, f) for t, f in zip(true, final, strict=True) if bot_label(f) != t]
    table["confusion_pairs"] = confusion_pairs([t for t, _ in missed], [f for _, f in missed])
    fallbacks = sum(f == FALLBACK for f in final)
    table["fallbacks"] = fallbacks
    table["fallback_rate"] = fallbacks / len(final)
    table["wrong_intents"] = sum(f not in (t, FALLBACK) for t, f in zip(true, final, strict=True))
    return table


def rasa_errors(examples: Sequence[Example], parsed: Sequence[Parsed]) -> list[dict[str, Any]]:
    """The held-out messages Rasa gets wrong in either view, with both predictions and their confidences."""
    return [
        {
            "text": e.text,
            "file": e.source,
            "intent": e.intent,
            "classifier": {"name": p.classifier_intent, "confidence": round(p.classifier_confidence, 4)},
            "bot": {"name": p.final_intent, "confidence": round(p.final_confidence, 4)},
        }
        for e, p in zip(examples, parsed, strict=True)
        if p.classifier_intent != e.intent or bot_label(p.final_intent) != e.intent
    ]


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_scores(texts: Sequence[str], gold: Sequence[Entities], predicted: Sequence[Entities]) -> dict[str, Any]:
    """Per entity type and micro precision/recall/F1 of the (type, value) sets, message by message.

    Only the types that occur in the gold annotations count: a type nobody annotated cannot be scored, and
    its predictions are left out rather than counted as false positives.
    """
    types = sorted({t for pairs in gold for t, _ in pairs})
    if not types:
        return {"types": {}, "micro": None, "note": "no annotated entities"}
    counts = {t: Counter[str]() for t in types}
    errors = []
    for text, g, found in zip(texts, gold, predicted, strict=True):
        p = frozenset(pair for pair in found if pair[0] in counts)
        for t, _ in g & p:
            counts[t]["tp"] += 1
        for t, _ in p - g:
            counts[t]["fp"] += 1
        for t, _ in g - p:
            counts[t]["fn"] += 1
        if g != p:
            errors.append({"text": text, "gold": sorted(g), "predicted": sorted(p)})
    total = sum(counts.values(), Counter[str]())
    return {
        "types": {
            t: {**prf(c["tp"], c["fp"], c["fn"]), "gold": c["tp"] + c["fn"], "predicted": c["tp"] + c["fp"]}
            for t, c in counts.items()
        },
        "micro": {**prf(total["tp"], total["fp"], total["fn"]), "gold": total["tp"] + total["fn"]},
        "errors": errors,
    }


def make_baseline() -> Pipeline:
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)),
            ("logreg", LogisticRegression(C=10, max_iter=2000)),
        ]
    )


def train_baseline(texts: Sequence[str], intents: Sequence[str]) -> Pipeline:
    return make_baseline().fit(list(texts), list(intents))


def baseline_cv(texts: Sequence[str], intents: Sequence[str]) -> list[str]:
    """Out-of-fold predictions of the baseline, pooled like Rasa's cross-validation report."""
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    return [str(p) for p in cross_val_predict(make_baseline(), list(texts), list(intents), cv=folds)]


def train_rasa(config: Path, nlu_data: Path, out: Path) -> Path:
    """An NLU-only model of all the training data, with the global generators seeded as seeded_rasa.py does."""
    from rasa.model_training import train_nlu

    random.seed(SEED)
    np.random.seed(SEED)
    model = train_nlu(str(config), str(nlu_data), str(out), fixed_model_name="nlu-all")
    if model is None:
        raise RuntimeError(f"rasa train nlu wrote no model to {out}")
    return Path(model)


def parse_all(model: Path, texts: Sequence[str]) -> list[Parsed]:
    """Every message parsed in-process by the model, as the Rasa server would parse it."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def parse() -> list[Parsed]:
        return [to_parsed(await agent.parse_message(text)) for text in texts]

    return asyncio.run(parse())


def rasa_cv_table(cv_dir: Path) -> dict[str, Any]:
    """Rasa's cross-validation intent_report.json (and intent_errors.json) in the shape of intent_table."""
    report = json.loads((cv_dir / "intent_report.json").read_text(encoding="utf-8"))
    intents = {
        name: {"precision": s["precision"], "recall": s["recall"], "f1": s["f1-score"], "support": s["support"]}
        for name, s in report.items()
        if isinstance(s, dict) and "confused_with" in s
    }
    errors_file = cv_dir / "intent_errors.json"
    errors = json.loads(errors_file.read_text(encoding="utf-8")) if errors_file.exists() else []
    return {
        "macro_f1": report["macro avg"]["f1-score"],
        "accuracy": report.get("accuracy", report.get("micro avg", {}).get("f1-score")),
        "support": report["macro avg"]["support"],
        "intents": intents,
        "confusion_pairs": confusion_pairs(
            [e["intent"] for e in errors], [e["intent_prediction"]["name"] for e in errors]
        ),
    }


def gate_failures(report: dict[str, Any], minimum: float, cv_minimum: float | None = None) -> list[str]:
    """One line per missed gate; the cross-validation gate only when the report has a CV."""
    rasa = report["rasa_heldout_classifier"]["macro_f1"]
    baseline = report["baseline_heldout"]["macro_f1"]
    failures = []
    if rasa < minimum:
        failures.append(f"Rasa held-out macro-F1 (classifier view) {rasa:.4f} < {minimum}")
    if rasa <= baseline:
        failures.append(f"Rasa held-out macro-F1 (classifier view) {rasa:.4f} ≤ the baseline's {baseline:.4f}")
    blind = report.get("blind")
    if blind is not None:
        rasa_blind, baseline_blind = blind["rasa_classifier"]["macro_f1"], blind["baseline"]["macro_f1"]
        if rasa_blind < minimum:
            failures.append(f"Rasa blind-split macro-F1 (classifier view) {rasa_blind:.4f} < {minimum}")
        if rasa_blind <= baseline_blind:
            failures.append(f"Rasa blind-split macro-F1 {rasa_blind:.4f} ≤ the baseline's {baseline_blind:.4f}")
    cv, cv_floor = report["rasa_cv"], minimum if cv_minimum is None else cv_minimum
    if cv is not None and cv["macro_f1"] < cv_floor:
        failures.append(f"Rasa {FOLDS}-fold cross-validation macro-F1 {cv['macro_f1']:.4f} < {cv_floor}")
    return failures


def confusion_png(path: Path, true: Sequence[str], predicted: Sequence[str], title: str) -> None:
    """Counts in cells, colour by share of the row; predicted labels that are no true intent get extra columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(set(true))
    columns = rows + sorted(set(predicted) - set(rows))
    counts = np.zeros((len(rows), len(columns)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        counts[rows.index(t), columns.index(p)] += 1
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(2 + 0.6 * len(columns), 1.5 + 0.5 * len(rows)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(
                j, i, str(n), ha="center", va="center", fontsize=8, color="white" if shares[i, j] > 0.5 else "black"
            )
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def f3(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def cv_cell(table: dict[str, Any] | None, key: str) -> str:
    """A figure of a cross-validation table, or a dash when the run skipped cross-validation."""
    return f3(None if table is None else table[key])


def blind_summary(blind: dict[str, Any] | None) -> list[str]:
    """The blind split's rows for report.md (nothing when it was skipped)."""
    if blind is None:
        return []
    a, b, base = blind["rasa_classifier"], blind["rasa_bot"], blind["baseline"]
    return [
        f"Blind split: {a['support']} messages in {', '.join(blind['files'])}, written without seeing the training "
        "data or the held-out split (their headers say how):",
        "",
        "| blind split | Rasa (a) classifier | Rasa (b) bot | baseline |",
        "|---|---|---|---|",
        f"| macro-F1 | {f3(a['macro_f1'])} | {f3(b['macro_f1'])} | {f3(base['macro_f1'])} |",
        f"| accuracy | {f3(a['accuracy'])} | {f3(b['accuracy'])} | {f3(base['accuracy'])} |",
        f"| clarifications (nlu_fallback) | — | {b['fallbacks']} ({b['fallback_rate']:.1%}) | — |",
        f"| wrong intent | — | {b['wrong_intents']} | — |",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    """report.md: the summary, per-intent scores side by side, entities and the top confusion pairs."""
    s = report["settings"]
    a, b, base = report["rasa_heldout_classifier"], report["rasa_heldout_bot"], report["baseline_heldout"]
    rcv, bcv = report["rasa_cv"], report["baseline_cv"]
    cv_text = (
        f"Cross-validation: {FOLDS} seeded folds of the training data (Rasa: `rasa test nlu --cross-validation`, "
        f"results in `{s['cv_dir']}`; baseline: StratifiedKFold, shuffled, seed {SEED})."
        if s["cv_dir"]
        else "Cross-validation: skipped."
    )
    lines = [
        "# NLU evaluation",
        "",
        f"Held-out split: {a['support']} messages in {', '.join(report['heldout_files'])} (`{s['heldout']}`), "
        f"never trained on. Rasa: `{s['config']}` trained on all of `{s['nlu_data']}` "
        f"({s['training_messages']} messages; model `{s['model']}`). Baseline: {s['baseline']}, trained on the "
        f"same messages. {cv_text}",
        "",
        f"- **classifier view (a)**: {VIEWS['classifier']}.",
        f"- **bot view (b)**: {VIEWS['bot']}.",
        "",
        "## Summary",
        "",
        "| | Rasa (a) classifier | Rasa (b) bot | baseline |",
        "|---|---|---|---|",
        f"| held-out macro-F1 | {f3(a['macro_f1'])} | {f3(b['macro_f1'])} | {f3(base['macro_f1'])} |",
        f"| held-out accuracy | {f3(a['accuracy'])} | {f3(b['accuracy'])} | {f3(base['accuracy'])} |",
        f"| held-out clarifications (nlu_fallback) | — | {b['fallbacks']} ({b['fallback_rate']:.1%}) | — |",
        f"| held-out wrong intent (another real intent) | — | {b['wrong_intents']} | — |",
        f"| CV macro-F1 | {cv_cell(rcv, 'macro_f1')} | — | {cv_cell(bcv, 'macro_f1')} |",
        f"| CV accuracy | {cv_cell(rcv, 'accuracy')} | — | {cv_cell(bcv, 'accuracy')} |",
        "",
        *blind_summary(report.get("blind")),
        "Gates (macro-F1 on each split ≥ {}, cross-validation ≥ {}): {}".format(
            s["min_macro_f1"],
            s.get("min_cv_macro_f1", s["min_macro_f1"]),
            "; ".join(report["gate_failures"]) if report["gate_failures"] else "all passed",
        ),
        "",
        "## Per intent",
        "",
        "Held-out precision / recall / F1 (support = held-out messages), and the cross-validation F1.",
        "",
        "| intent | support | Rasa (a) P | R | F1 | Rasa (b) F1 | baseline P | R | F1 | Rasa CV F1 | baseline CV F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    intents = sorted(set(a["intents"]) | set(b["intents"]) | set(base["intents"]))
    for name in intents:
        ra, rb, bl = (t["intents"].get(name, {}) for t in (a, b, base))
        cells = [
            str(ra.get("support", rb.get("support", 0))),
            *(f3(ra.get(k)) for k in ("precision", "recall", "f1")),
            f3(rb.get("f1")),
            *(f3(bl.get(k)) for k in ("precision", "recall", "f1")),
            *(f3(cv["intents"].get(name, {}).get("f1") if cv else None) for cv in (rcv, bcv)),
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", "## Entities (held-out)", ""]
    ents = report["entities"]
    if ents["micro"] is None:
        lines.append(f"{ents['note'].capitalize()} in the held-out files: nothing to score.")
    else:
        lines += [
            "Per message, the set of (type, value) the model found against the annotated set; only annotated types.",
            "",
            "| entity | gold | predicted | P | R | F1 |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in ents["types"].items():
            scores = " | ".join(f3(t[k]) for k in ("precision", "recall", "f1"))
            lines.append(f"| {name} | {t['gold']} | {t['predicted']} | {scores} |")
        m = ents["micro"]
        lines.append(f"| **micro** | {m['gold']} | | {f3(m['precision'])} | {f3(m['recall'])} | {f3(m['f1'])} |")
    lines += ["", "## Top confusion pairs (held-out)", ""]
    for title, table in (("Rasa (a) classifier", a), ("Rasa (b) bot", b), ("baseline", base)):
        pairs = table["confusion_pairs"][:TOP_PAIRS]
        lines += [f"{title}: " + (", ".join(f"{p['true']} → {p['predicted']} {p['count']}" for p in pairs) or "none")]
        lines.append("")
    lines.append(f"The {len(report['rasa_errors'])} held-out messages Rasa gets wrong in either view: `report.json`.")
    return "\n".join(lines) + "\n"


def build_report(
    settings: dict[str, Any],
    examples: Sequence[Example],
    parsed: Sequence[Parsed],
    baseline_predicted: Sequence[str],
    rasa_cv: dict[str, Any] | None,
    baseline_cv: dict[str, Any] | None,
    blind: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every table of the evaluation and the gates it misses (at settings["min_macro_f1"])."""
    true = [e.intent for e in examples]
    files = dict.fromkeys(e.source for e in examples)
    report: dict[str, Any] = {
        "settings": settings,
        "heldout_files": {
            name: {
                "messages": sum(e.source == name for e in examples),
                "annotated_entities": sum(len(e.entities) for e in examples if e.source == name),
            }
            for name in files
        },
        "rasa_heldout_classifier": intent_table(true, [p.classifier_intent for p in parsed]),
        "rasa_heldout_bot": bot_table(examples, parsed),
        "baseline_heldout": intent_table(true, baseline_predicted),
        "rasa_cv": rasa_cv,
        "baseline_cv": baseline_cv,
        "entities": entity_scores(
            [e.text for e in examples], [e.entities for e in examples], [p.entities for p in parsed]
        ),
        "rasa_errors": rasa_errors(examples, parsed),
        "blind": blind,
    }
    report["gate_failures"] = gate_failures(report, settings["min_macro_f1"], settings.get("min_cv_macro_f1"))
    return report


def blind_tables(
    examples: Sequence[Example], parsed: Sequence[Parsed], baseline_predicted: Sequence[str]
) -> dict[str, Any]:
    """The blind split's scores: Rasa in both views and the baseline, with the messages Rasa gets wrong."""
    true = [e.intent for e in examples]
    return {
        "files": sorted(dict.fromkeys(e.source for e in examples)),
        "rasa_classifier": intent_table(true, [p.classifier_intent for p in parsed]),
        "rasa_bot": bot_table(examples, parsed),
        "baseline": intent_table(true, baseline_predicted),
        "rasa_errors": rasa_errors(examples, parsed),
    }


def write_reports(
    out: Path, report: dict[str, Any], examples: Sequence[Example], parsed: Sequence[Parsed], baseline: Sequence[str]
) -> None:
    """report.json, report.md and the confusion matrices of Rasa and the baseline on the held-out split."""
    true = [e.intent for e in examples]
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    confusion_png(
        out / "confusion_heldout.png",
        true,
        [p.final_intent for p in parsed],
        "Rasa, held-out: classifier's intent, or nlu_fallback where the bot asked back (colour: row share)",
    )
    confusion_png(out / "confusion_baseline_heldout.png", true, baseline, "Baseline, held-out")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--nlu", type=Path, default=ROOT / "data" / "nlu", help="the training data")
    parser.add_argument("--heldout", default=str(ROOT / "tests" / "nlu" / "heldout_*.yml"), help="a glob")
    parser.add_argument(
        "--blind",
        default=str(ROOT / "tests" / "nlu" / "blind" / "*.yml"),
        help="a glob: a second held-out split, written without seeing the training data or the first split; "
        "scored and gated like it ('' to skip)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "eval-nlu")
    parser.add_argument(
        "--model",
        type=Path,
        help="a model to evaluate instead of training one (trained on --nlu, or the baseline is "
        "trained on other data than Rasa)",
    )
    cv = parser.add_mutually_exclusive_group()
    cv.add_argument("--cv-dir", type=Path, help="the output of `rasa test nlu --cross-validation` (default OUT/cv)")
    cv.add_argument("--skip-cv", action="store_true", help="no cross-validation (Rasa's or the baseline's)")
    parser.add_argument("--min-macro-f1", type=float, default=0.95, help="the gate on each held-out split")
    parser.add_argument("--min-cv-macro-f1", type=float, default=0.945, help="the floor of the cross-validation")
    parser.add_argument("--no-gate", action="store_true", help="report missed gates but exit 0")
    return parser.parse_args(argv)


def display(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the reports, print the figures; 1 if a gate is missed (and gates apply)."""
    from rasa.shared.nlu.training_data.loading import load_data

    out: Path = args.out.resolve()
    cv_dir: Path | None = None if args.skip_cv else (args.cv_dir or out / "cv").resolve()
    if cv_dir is not None and not (cv_dir / "intent_report.json").exists():
        print(
            f"no intent_report.json in {cv_dir}: run the Rasa cross-validation first, or pass --skip-cv",
            file=sys.stderr,
        )
        return 2
    heldout = sorted(Path(p).resolve() for p in glob.glob(args.heldout))
    if not heldout:
        print(f"no held-out files match {args.heldout}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def timed(step: str, start: float) -> None:
        timings[step] = round(time.perf_counter() - start, 1)
        print(f"[{step}: {timings[step]:.0f} s]", flush=True)

    training = load_data(str(args.nlu)).nlu_examples
    train_texts = [m.get("text") for m in training]
    train_intents = [m.get("intent") for m in training]
    examples = load_examples(heldout)
    texts = [e.text for e in examples]

    model: Path = args.model
    if model is None:
        start = time.perf_counter()
        model = train_rasa(args.config, args.nlu, out / "model")
        timed("train Rasa NLU on all training data", start)
    start = time.perf_counter()
    parsed = parse_all(model, texts)
    timed("parse the held-out split", start)

    start = time.perf_counter()
    baseline = train_baseline(train_texts, train_intents)
    baseline_predicted = [str(p) for p in baseline.predict(texts)]
    timed("train and run the baseline", start)
    baseline_cv_table = None
    if cv_dir is not None:
        start = time.perf_counter()
        baseline_cv_table = intent_table(train_intents, baseline_cv(train_texts, train_intents))
        timed("baseline cross-validation", start)

    blind = None
    blind_files = sorted(Path(p).resolve() for p in glob.glob(args.blind)) if args.blind else []
    if blind_files:
        start = time.perf_counter()
        blind_examples = load_examples(blind_files)
        blind_texts = [e.text for e in blind_examples]
        blind_parsed = parse_all(model, blind_texts)
        blind = blind_tables(blind_examples, blind_parsed, [str(p) for p in baseline.predict(blind_texts)])
        timed("parse and score the blind split", start)

    settings = {
        "config": display(args.config.resolve()),
        "nlu_data": display(args.nlu.resolve()),
        "training_messages": len(training),
        "heldout": display(Path(args.heldout)),
        "model": display(model.resolve()),
        "seed": SEED,
        "baseline": BASELINE,
        "views": VIEWS,
        "cv_dir": display(cv_dir) if cv_dir else None,
        "min_macro_f1": args.min_macro_f1,
        "min_cv_macro_f1": args.min_cv_macro_f1,
    }
    rasa_cv = rasa_cv_table(cv_dir) if cv_dir else None
    report = build_report(settings, examples, parsed, baseline_predicted, rasa_cv, baseline_cv_table, blind)
    report["timings_seconds"] = timings
    write_reports(out, report, examples, parsed, baseline_predicted)
    print_summary(report, out)
    for failure in report["gate_failures"]:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if report["gate_failures"] and not args.no_gate else 0


def print_summary(report: dict[str, Any], out: Path) -> None:
    a, b, base = report["rasa_heldout_classifier"], report["rasa_heldout_bot"], report["baseline_heldout"]
    print(f"held-out, {a['support']} messages:")
    print(f"  Rasa (a) classifier view: macro-F1 {a['macro_f1']:.4f}  accuracy {a['accuracy']:.4f}")
    print(
        f"  Rasa (b) bot view:        macro-F1 {b['macro_f1']:.4f}  accuracy {b['accuracy']:.4f}  "
        f"clarifications {b['fallbacks']} ({b['fallback_rate']:.1%})  wrong intent {b['wrong_intents']}"
    )
    print(f"  baseline:                 macro-F1 {base['macro_f1']:.4f}  accuracy {base['accuracy']:.4f}")
    blind = report.get("blind")
    if blind is not None:
        ba, bb, bbase = blind["rasa_classifier"], blind["rasa_bot"], blind["baseline"]
        print(
            f"blind split, {ba['support']} messages: Rasa (a) {ba['macro_f1']:.4f}, (b) {bb['macro_f1']:.4f}; "
            f"baseline {bbase['macro_f1']:.4f}"
        )
    for name, key in (("Rasa", "rasa_cv"), ("baseline", "baseline_cv")):
        cv = report[key]
        if cv is not None:
            print(f"{FOLDS}-fold CV, {name}: macro-F1 {cv['macro_f1']:.4f}  accuracy {cv['accuracy']:.4f}")
    ents = report["entities"]
    if ents["micro"] is None:
        print(f"entities: {ents['note']}")
    else:
        per_type = "  ".join(f"{t} {s['f1']:.3f}" for t, s in ents["types"].items())
        print(f"entities: micro-F1 {ents['micro']['f1']:.4f}  ({per_type})")
    print(f"reports: {display(out / 'report.md')}, report.json, confusion_heldout.png, confusion_baseline_heldout.png")


def main(argv: Sequence[str] | None = None) -> int:
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
