"""Dataset fixture: both TFDS datasets (4-class configs) built from the tiny demo corpora.

`tiny_data_dir` is a TFDS data_dir holding `crema_d_av/emotion4` and `msp_improv_av/emotion4`, built once
per test session by the real builders (MediaPipe on every frame); read them with
`tfds.data_source('crema_d_av/emotion4', split='train', data_dir=tiny_data_dir)`. Its landmark cache
(`tiny_data_dir / 'landmark_cache'`) lets other tests rebuild variants of the tiny corpora cheaply.
"""

import pytest

from artser_jax.data import prepare

TINY_CONFIG = "emotion4"


@pytest.fixture(scope="session")
def tiny_data_dir(tiny_corpora, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tiny_data")
    for corpus in ("crema_d", "msp_improv"):
        prepare.prepare_dataset(corpus, tiny_corpora / corpus, data_dir, config_names=(TINY_CONFIG,),
                                 num_workers=2, progress=False)
    return data_dir
