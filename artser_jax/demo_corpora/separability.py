"""How separable emotion is in the demo corpora, within and across corpora, from simple acoustics.

Features per utterance (16 kHz, as the builders read it): log-F0 (YIN, voiced frames) mean/std/5th/95th
percentile, frame energy (dB) mean/std/95th percentile, voiced fraction, duration, spectral centroid
mean/std and 13 MFCC means and standard deviations. Classifier: standardisation + multinomial logistic
regression (scikit-learn). Within a corpus: GroupKFold by speaker (no speaker in both train and test
folds). Across corpora: trained on all of one corpus, tested on all of the other, no adaptation.
Metric: UAR (macro recall) over the 4 classes ANG/HAP/NEU/SAD, chance 25 %.
"""

import logging

import numpy as np
import tqdm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from artser_jax.data import audio as audio_io
from artser_jax.data import crema_d, msp_improv

CLASSES = ("ANG", "HAP", "NEU", "SAD")


def utterance_features(waveform, sample_rate=audio_io.SAMPLE_RATE):
    """A fixed-length vector of prosodic and spectral statistics of one utterance."""
    import librosa

    frame, hop = 512, 160
    rms = librosa.feature.rms(y=waveform, frame_length=frame, hop_length=hop)[0]
    energy_db = 20 * np.log10(rms + 1e-5)
    active = energy_db > energy_db.max() - 35
    f0 = librosa.yin(waveform, fmin=60, fmax=500, sr=sample_rate, frame_length=1024, hop_length=hop)
    count = min(len(f0), len(active))
    voiced_f0 = np.log(f0[:count][active[:count]])
    if voiced_f0.size == 0:
        voiced_f0 = np.zeros(1)
    centroid = librosa.feature.spectral_centroid(y=waveform, sr=sample_rate, n_fft=frame, hop_length=hop)[0][active]
    mfcc = librosa.feature.mfcc(y=waveform, sr=sample_rate, n_mfcc=13, n_fft=frame, hop_length=hop)[:, active]
    return np.concatenate([
        [voiced_f0.mean(), voiced_f0.std(), *np.percentile(voiced_f0, [5, 95])],
        [energy_db[active].mean(), energy_db[active].std(), np.percentile(energy_db[active], 95)],
        [active.mean(), len(waveform) / sample_rate, centroid.mean(), centroid.std()],
        mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def corpus_table(corpus, root, msp_label_source="consensus"):
    """(paths, labels, speakers) of the 4-class utterances, labelled as the builders' default configs do:
    CREMA-D by intended emotion, MSP-IMPROV by the consensus of Evaluation.txt (or the scenario)."""
    if corpus == "crema_d":
        metadata = crema_d.load_metadata(root)
        labels = crema_d.clip_labels(metadata.stems)
        paths = {stem: crema_d.audio_path(root, stem) for stem in labels}
        speakers = {stem: crema_d.parse_stem(stem).actor for stem in labels}
    elif corpus == "msp_improv":
        metadata = msp_improv.load_metadata(root)
        media = msp_improv.find_media(root, ".wav")
        labels = msp_improv.utterance_labels(list(media), msp_label_source, evaluations=metadata.evaluations)
        paths = {stem: media[stem] for stem in labels}
        speakers = {stem: msp_improv.parse_stem(stem).speaker for stem in labels}
    else:
        raise ValueError(f"unknown corpus {corpus!r}")
    stems = sorted(labels)
    return [paths[s] for s in stems], np.array([labels[s] for s in stems]), np.array([speakers[s] for s in stems])


def extract(paths, desc):
    return np.stack([utterance_features(audio_io.load_audio(path)) for path in tqdm.tqdm(paths, desc=desc)])


def _classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def uar(true, predicted):
    return 100.0 * recall_score(true, predicted, labels=list(CLASSES), average="macro", zero_division=0)


def within_corpus_uar(features, labels, speakers, folds=5):
    """UAR (%) of speaker-independent GroupKFold cross-validation, and the per-fold UARs."""
    folds = min(folds, len(set(speakers)))
    predicted = np.empty(len(labels), dtype=labels.dtype)
    per_fold = []
    for train, test in GroupKFold(n_splits=folds).split(features, labels, groups=speakers):
        model = _classifier().fit(features[train], labels[train])
        predicted[test] = model.predict(features[test])
        per_fold.append(uar(labels[test], predicted[test]))
    return uar(labels, predicted), per_fold


def cross_corpus_uar(source_features, source_labels, target_features, target_labels):
    model = _classifier().fit(source_features, source_labels)
    return uar(target_labels, model.predict(target_features))


def measure(corpora_dir, msp_label_source="consensus"):
    """All the numbers: within-corpus (speaker-independent) and cross-corpus UARs, class counts."""
    tables, features = {}, {}
    for corpus in ("crema_d", "msp_improv"):
        paths, labels, speakers = corpus_table(corpus, f"{corpora_dir}/{corpus}", msp_label_source)
        tables[corpus] = (labels, speakers)
        features[corpus] = extract(paths, f"{corpus} features")
        logging.info("%s: %d utterances, %d speakers", corpus, len(labels), len(set(speakers)))
    results = {"chance_uar": 25.0, "msp_improv_label_source": msp_label_source}
    for corpus, (labels, speakers) in tables.items():
        total, per_fold = within_corpus_uar(features[corpus], labels, speakers)
        results[f"within_{corpus}_uar"] = round(total, 1)
        results[f"within_{corpus}_fold_uars"] = [round(v, 1) for v in per_fold]
        results[f"{corpus}_class_counts"] = {c: int(np.sum(labels == c)) for c in CLASSES}
        results[f"{corpus}_speakers"] = len(set(speakers))
    for source, target in (("crema_d", "msp_improv"), ("msp_improv", "crema_d")):
        results[f"cross_{source}_to_{target}_uar"] = round(cross_corpus_uar(
            features[source], tables[source][0], features[target], tables[target][0]), 1)
    return results
