"""Figures of a fitted gesture model on the data it was fitted on (docs/method.md section 3, analyses).

    python launch/analyze_gestures.py --model=FILE --data_dir=DIR --out_dir=DIR [--split=train]

Writes to --out_dir:
- `cluster_shares.png`: share of each corpus's segments per cluster, common clusters marked;
- `cluster_mouths.png`: the mean normalised lip contour of each cluster drawn as a mouth, with each
  corpus's mean outer contour on top;
- `cluster_emotion.png`: cluster x emotion heat map per corpus (emotion labels are used for this
  analysis only, never for fitting);
- `gesture_analysis.json`: the numbers behind the figures.
"""

import json
import logging
import pathlib

from absl import app
from absl import flags
import matplotlib

matplotlib.use("Agg")
import matplotlib.patches as mpatches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from artser_jax import landmarks as lm  # noqa: E402
from artser_jax.gestures import cluster_space  # noqa: E402
from artser_jax.gestures import fitting  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "Gesture model artifact (launch/fit_gestures.py --out).",
                             required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir holding both datasets.", required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Directory for the PNGs and the JSON.", required=True)
_SPLIT = flags.DEFINE_string("split", "train", "Split to analyse (the fit used 'train').")

CORPUS_COLOURS = ("tab:blue", "tab:orange")
_OUTER_CONTOUR = ([lm.LIP_INDICES.index(i) for i in lm.OUTER_LOWER_LIP]
                  + [lm.LIP_INDICES.index(i) for i in reversed(lm.OUTER_UPPER_LIP)])
_INNER_CONTOUR = ([lm.LIP_INDICES.index(i) for i in lm.INNER_LOWER_LIP]
                  + [lm.LIP_INDICES.index(i) for i in reversed(lm.INNER_UPPER_LIP)])


def _cluster_labels(model):
    return [f"{c}{'*' if model.common[c] else ''}" for c in range(model.num_clusters)]


def plot_cluster_shares(model, counts, path):
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    clusters = np.arange(model.num_clusters)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * model.num_clusters, 4.2))
    for c in np.flatnonzero(model.common):
        ax.axvspan(c - 0.45, c + 0.45, color="0.88", zorder=0)
    width = 0.38
    for i, corpus in enumerate(model.corpora):
        role = "source" if i == 0 else "target"
        ax.bar(clusters + (i - 0.5) * width, shares[i], width, color=CORPUS_COLOURS[i],
               label=f"{corpus} ({role}, {int(counts[i].sum())} segments)", zorder=2)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(mpatches.Patch(color="0.88", label="common cluster (*)"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_xticks(clusters, _cluster_labels(model))
    ax.set_xlabel("gesture cluster")
    ax.set_ylabel("share of the corpus's segments")
    ax.set_title(f"Segments per gesture cluster, by corpus (K={model.num_clusters}, common rule: "
                 f"ratio >= {model.config.common_min_ratio}, count >= {model.config.common_min_count})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cluster_mouths(model, tables, ids, path):
    columns = min(4, model.num_clusters)
    rows = int(np.ceil(model.num_clusters / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.3 * rows + 0.8), squeeze=False)
    all_lips = np.concatenate([t.lips for t in tables])
    all_ids = np.concatenate(ids)
    limit = np.abs(all_lips).max() * 1.1
    for c, ax in enumerate(axes.flat):
        if c >= model.num_clusters:
            ax.axis("off")
            continue
        members = all_ids == c
        if members.any():
            mean = all_lips[members].mean(0)
            ax.fill(*mean[_OUTER_CONTOUR].T, color="indianred", alpha=0.8, label="lips (both corpora)")
            ax.fill(*mean[_INNER_CONTOUR].T, color="0.15", label="inner mouth")
            for i, (table, table_ids) in enumerate(zip(tables, ids)):
                if (table_ids == c).any():
                    outer = table.lips[table_ids == c].mean(0)[_OUTER_CONTOUR]
                    ax.plot(*np.vstack([outer, outer[:1]]).T, color=CORPUS_COLOURS[i], lw=1.2,
                            ls="--" if i else "-", label=f"outer contour, {model.corpora[i]}")
        ax.set_title(f"cluster {c}{' (common)' if model.common[c] else ''}\nn={int(members.sum())}",
                     fontsize=9)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit * 0.75, limit * 0.75)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        if c % columns == 0:
            ax.set_ylabel("y / inter-ocular dist.", fontsize=8)
        if c >= (rows - 1) * columns or c + columns >= model.num_clusters:
            ax.set_xlabel("x / inter-ocular dist.", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("Mean normalised lip contour per gesture cluster (mouth-centred, eye line level)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def emotion_tables(model, tables, ids):
    """Per corpus `(K, E)` counts of segments per cluster and emotion."""
    result = []
    for table, table_ids in zip(tables, ids):
        counts = np.zeros((model.num_clusters, len(table.emotion_names)), np.int64)
        known = table.emotions >= 0
        np.add.at(counts, (table_ids[known], table.emotions[known]), 1)
        result.append(counts)
    return result


def plot_cluster_emotion(model, tables, cross_counts, path):
    fig, axes = plt.subplots(1, 2, figsize=(4.0 + 1.1 * sum(len(t.emotion_names) for t in tables),
                                            1.6 + 0.45 * model.num_clusters))
    for i, (ax, table, counts) in enumerate(zip(axes, tables, cross_counts)):
        # Column-normalised: how each emotion's segments spread over the clusters.
        share = counts / np.maximum(counts.sum(0, keepdims=True), 1)
        image = ax.imshow(share, cmap="viridis", vmin=0.0, vmax=max(share.max(), 1e-6), aspect="auto")
        for (c, e), value in np.ndenumerate(share):
            ax.text(e, c, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.6 * share.max() else "black")
        ax.set_xticks(range(len(table.emotion_names)), table.emotion_names)
        ax.set_yticks(range(model.num_clusters), _cluster_labels(model))
        ax.set_xlabel("emotion")
        ax.set_ylabel("gesture cluster (* common)")
        role = "source" if i == 0 else "target"
        ax.set_title(f"{model.corpora[i]} ({role})", fontsize=10)
        fig.colorbar(image, ax=ax, label="share of the emotion's segments")
    fig.suptitle("Gesture cluster x emotion (each column sums to 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def analyze(model, tables, out_dir):
    """Writes the three figures and the JSON for `tables` (with lips), one per corpus of `model`."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [model.assign_table(table) for table in tables]
    counts = np.stack([np.bincount(i, minlength=model.num_clusters) for i in ids])
    cross_counts = emotion_tables(model, tables, ids)
    plot_cluster_shares(model, counts, out_dir / "cluster_shares.png")
    plot_cluster_mouths(model, tables, ids, out_dir / "cluster_mouths.png")
    plot_cluster_emotion(model, tables, cross_counts, out_dir / "cluster_emotion.png")
    summary = {
            "corpora": list(model.corpora), "common": model.common.tolist(), "counts": counts.tolist(),
            "emotion_names": [list(t.emotion_names) for t in tables],
            "cluster_emotion_counts": [c.tolist() for c in cross_counts],
    }
    (out_dir / "gesture_analysis.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    model = cluster_space.load_gesture_model(_MODEL.value)
    if not isinstance(model, cluster_space.GestureModel):
        raise SystemExit(f"error: {_MODEL.value} is a phone-identity model; the figures are for a fitted "
                         f"k-means gesture model")
    tables = fitting.tables_from_data(model.datasets, _DATA_DIR.value, model.config, _SPLIT.value,
                                      with_lips=True)
    analyze(model, tables, _OUT_DIR.value)
    print(f"wrote cluster_shares.png, cluster_mouths.png, cluster_emotion.png and gesture_analysis.json "
          f"({_SPLIT.value} split) to {_OUT_DIR.value}")


if __name__ == "__main__":
    app.run(main)
