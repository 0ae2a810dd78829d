"""How much of the paper's premise is in a corpus pair: gesture clusters vs emotions (issue 11).

The shared gesture cluster space is fitted on the training splits of both corpora exactly as AG-CC fits
it (`gestures.fitting.fit_from_tables`); then, per corpus, the normalised mutual information (scikit-learn,
arithmetic normalisation) between each valid segment's cluster and its utterance's emotion, and the
cluster x emotion table of segment counts. NMI near 0: clusters say nothing about emotion (the premise is
absent); higher: segments of one cluster tend to share an emotion, which is what AG-CC's anchors need.
"""

import numpy as np
from sklearn.metrics import normalized_mutual_info_score


def cluster_emotion_table(cluster_ids, emotions, num_clusters, num_emotions):
    """(num_clusters, num_emotions) segment counts."""
    table = np.zeros((num_clusters, num_emotions), np.int64)
    np.add.at(table, (np.asarray(cluster_ids), np.asarray(emotions)), 1)
    return table


def measure_premise_from_tables(tables, corpora, config):
    """{corpus: {'nmi', 'table', 'segments'}, 'emotions', 'num_clusters', 'common'} of two descriptor tables."""
    from artser_jax.gestures import fitting

    model, labels, role = fitting.fit_from_tables(tables[0], tables[1], config, corpora)
    emotions = tables[0].emotion_names
    result = {"emotions": list(emotions), "num_clusters": int(model.num_clusters),
              "common": model.common.astype(int).tolist()}
    for index, (corpus, table) in enumerate(zip(corpora, tables)):
        if tuple(table.emotion_names) != tuple(emotions):
            raise ValueError(f"{corpus} labels {table.emotion_names} differ from {corpora[0]}'s {emotions}")
        clusters = labels[role == index]
        result[corpus] = {
            "nmi": float(normalized_mutual_info_score(table.emotions, clusters)),
            "table": cluster_emotion_table(clusters, table.emotions, model.num_clusters, len(emotions)).tolist(),
            "segments": int(len(clusters))}
    return result


def measure_premise(datasets, corpora, data_dir, config=None, split="train"):
    """`measure_premise_from_tables` on the `split` of two built TFDS datasets (source, target)."""
    from artser_jax.gestures import cluster_space
    from artser_jax.gestures import fitting

    config = config or cluster_space.GestureConfig()
    tables = fitting.tables_from_data(datasets, data_dir, config, split)
    return measure_premise_from_tables(tables, corpora, config)


def format_premise(name, result):
    """Markdown: the NMI per corpus and each corpus's cluster x emotion table."""
    lines = [f"**{name}**: cluster-emotion NMI " +
             ", ".join(f"{corpus} {result[corpus]['nmi']:.3f} ({result[corpus]['segments']} segments)"
                       for corpus in result if isinstance(result[corpus], dict)), ""]
    emotions = result["emotions"]
    for corpus in (c for c in result if isinstance(result[c], dict)):
        lines += [f"{corpus} (train split), segments per cluster and emotion:", "",
                  "| cluster | common | " + " | ".join(emotions) + " |", "|---" * (len(emotions) + 2) + "|"]
        for cluster, row in enumerate(result[corpus]["table"]):
            lines.append(f"| {cluster} | {'yes' if result['common'][cluster] else 'no'} | " +
                         " | ".join(str(v) for v in row) + " |")
        lines.append("")
    return "\n".join(lines)
