"""Classification metrics and evaluation reports.

UAR (unweighted average recall = macro recall) is the primary metric; WA (weighted accuracy, plain
accuracy), macro-F1, per-class precision/recall and the confusion matrix come with it. One evaluation
writes `report.json`, `predictions.csv` and two confusion-matrix PNGs (counts and row-normalised) into
its own folder; scalar metrics are also appended to the workdir's JSON-lines metrics file.
"""

import csv
import json
import logging
import pathlib

import numpy as np
from sklearn import metrics as sk_metrics


def classification_metrics(labels, predictions, num_classes):
    """Metrics of integer `predictions` against integer `labels` (both shape (N,)), in percent.

    Macro averages (UAR, macro-F1) run over the classes that occur in `labels` or `predictions`, so a
    split lacking a class is not scored as if it had all of them.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be equal 1-D shapes")
    if labels.size == 0:
        raise ValueError("No examples to evaluate")
    all_classes = np.arange(num_classes)
    present = np.union1d(np.unique(labels), np.unique(predictions))
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
        labels, predictions, labels=all_classes, zero_division=0)
    scored = np.isin(all_classes, present)
    return {
        "uar": 100.0 * float(np.mean(recall[scored])),
        "wa": 100.0 * float(np.mean(labels == predictions)),
        "macro_f1": 100.0 * float(np.mean(f1[scored])),
        "precision": (100.0 * precision).tolist(),
        "recall": (100.0 * recall).tolist(),
        "support": support.tolist(),
        "confusion": sk_metrics.confusion_matrix(labels, predictions, labels=all_classes).tolist(),
        "num_examples": int(labels.size),
    }


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def write_predictions_csv(path, utterance_ids, labels, logits, class_names):
    """`utterance,true,predicted,p_<class>...` per utterance, labels as class names."""
    probabilities = softmax(np.asarray(logits, dtype=np.float64))
    predictions = probabilities.argmax(axis=-1)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["utterance", "true", "predicted"] + [f"p_{name}" for name in class_names])
        for utterance, label, predicted, probs in zip(utterance_ids, labels, predictions, probabilities):
            writer.writerow([utterance, class_names[label], class_names[predicted]]
                            + [f"{p:.6f}" for p in probs])


def plot_confusion(path, confusion, class_names, normalise, title):
    """Saves a confusion-matrix heat map; `normalise` divides each row by its true-class count."""
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

    confusion = np.asarray(confusion, dtype=np.float64)
    if normalise:
        rows = confusion.sum(axis=1, keepdims=True)
        values = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
        text = [[f"{v:.2f}" for v in row] for row in values]
    else:
        values = confusion
        text = [[f"{int(v)}" for v in row] for row in values]
    fig, ax = plt.subplots(figsize=(4 + 0.4 * len(class_names), 3.5 + 0.4 * len(class_names)))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalise else max(values.max(), 1))
    fig.colorbar(image, ax=ax, fraction=0.046)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = values.max() / 2 if values.max() > 0 else 0.5
    for i in ticks:
        for j in ticks:
            ax.text(j, i, text[i][j], ha="center", va="center",
                    color="white" if values[i, j] > threshold else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out_dir, name, utterance_ids, labels, logits, class_names, extra=None):
    """Writes report.json, predictions.csv and confusion PNGs for one evaluation; returns the metrics.

    `utterance_ids`, `labels` (N,) and `logits` (N, C) hold exactly the evaluated utterances (padding
    already removed). `extra` (e.g. step, corpus, split) is stored in the report as is.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    result = classification_metrics(labels, logits.argmax(axis=-1), len(class_names))
    report = {"name": name, "classes": list(class_names), **(extra or {}), **result}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    write_predictions_csv(out_dir / "predictions.csv", utterance_ids, labels, logits, class_names)
    for normalise, suffix in ((False, "counts"), (True, "normalised")):
        plot_confusion(out_dir / f"confusion_{suffix}.png", result["confusion"], class_names, normalise,
                       f"{name}: UAR {result['uar']:.1f}%")
    logging.info("%s: UAR %.2f%%  WA %.2f%%  macro-F1 %.2f%%  (%d utterances) -> %s", name, result["uar"],
                 result["wa"], result["macro_f1"], result["num_examples"], out_dir)
    return report


class MetricsWriter:
    """Appends one JSON object per line to `<workdir>/metrics.jsonl` (only on process 0)."""

    def __init__(self, workdir, enabled=True):
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self.enabled = enabled

    def truncate_after(self, step):
        """Drops records newer than `step` (written after the checkpoint a resumed run restarts from)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, step, **scalars):
        if not self.enabled:
            return
        record = {"step": int(step)}
        record.update({k: float(v) if isinstance(v, (np.floating, np.integer)) else v
                       for k, v in scalars.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(workdir):
    """The records of `<workdir>/metrics.jsonl` as a list of dicts."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
