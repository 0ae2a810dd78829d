"""The evaluators: one pass over a split on the mesh, classification metrics, and the reports.

UAR (unweighted average recall = macro recall) is the primary metric; WA (weighted accuracy, plain
accuracy), macro-F1, per-class precision/recall and the confusion matrix come with it. One evaluation
writes `report.json`, `predictions.csv` and two confusion-matrix PNGs (counts and row-normalised) into
its own folder; scalar metrics are also appended to the workdir's JSON-lines metrics file.

Evaluators are named in `config.evals` (which corpus role and split each reads); target labels are read
here and nowhere else, and only to report, never to select.
"""

import csv
import json
import logging
import pathlib

import jax
import numpy as np
import tqdm
from scipy import special
from sklearn import metrics as sk_metrics

from artser_jax import input_pipeline
from artser_jax import sharding


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


def write_predictions_csv(path, utterance_ids, labels, logits, class_names):
    """`utterance,true,predicted,p_<class>...` per utterance, labels as class names."""
    probabilities = special.softmax(np.asarray(logits, dtype=np.float64), axis=-1)
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
    else:
        values = confusion.astype(np.int64)
    fig, ax = plt.subplots(figsize=(4 + 0.4 * len(class_names), 3.5 + 0.4 * len(class_names)))
    display = sk_metrics.ConfusionMatrixDisplay(values, display_labels=list(class_names))
    display.plot(ax=ax, cmap="Blues", values_format=".2f" if normalise else "d", colorbar=True)
    display.im_.set_clim(0, 1 if normalise else max(values.max(), 1))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
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


def run_evaluation(name, eval_step, state, data_source, prepare, config, mesh, shard_options):
    """Logits, labels and ids of every utterance of one split (padding removed), on every process."""
    dataset, count = input_pipeline.eval_dataset(data_source, prepare, config.input.eval_batch_size,
                                                 shard_options)
    outputs = []
    for batch in tqdm.tqdm(dataset, desc=f"eval {name}", unit="batch", leave=False,
                           disable=jax.process_index() != 0):
        result = eval_step(state, sharding.host_to_global(batch, mesh))
        outputs.append(sharding.fetch_replicated(result))
    joined = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    keep = joined["eval_mask"]
    if int(keep.sum()) != count:
        raise RuntimeError(f"{name}: evaluated {int(keep.sum())} utterances, the split has {count}")
    return (input_pipeline.decode_utterance_ids(joined["utterance_id"][keep]), joined["label"][keep],
            joined["logits"][keep])


def evaluate_all(names, eval_step, state, sources, prepares, config, mesh, shard_options, out_dir, step):
    """Runs the named evaluators and writes their reports under `out_dir/<name>/`; returns scalars."""
    scalars = {}
    for name in names:
        ids, labels, logits = run_evaluation(name, eval_step, state, sources[name], prepares[name], config,
                                             mesh, shard_options)
        if jax.process_index() == 0:
            spec = config.evals[name]
            report = write_report(
                pathlib.Path(out_dir) / name, name, ids, labels, logits, list(config.labels),
                extra={"step": int(step), "corpus": config[spec.corpus].corpus, "split": spec.split,
                       "method": config.method})
        else:
            report = classification_metrics(labels, logits.argmax(-1), len(config.labels))
        scalars.update({f"{name}/{k}": report[k] for k in ("uar", "wa", "macro_f1")})
    return scalars
