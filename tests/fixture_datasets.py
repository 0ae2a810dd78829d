"""Dataset fixture: both TFDS datasets (4-class configs) built from the tiny demo corpora.

`tiny_data_dir` is a TFDS data_dir holding `crema_d_av/emotion4` and `msp_improv_av/emotion4`, built once
per test session by the real builders (MediaPipe on every frame); read them with
`tfds.data_source('crema_d_av/emotion4', split='train', data_dir=tiny_data_dir)`. Its landmark cache
(`tiny_data_dir / 'landmark_cache'`) lets other tests rebuild variants of the tiny corpora cheaply.
With pytest-xdist the workers share one build (the first builds it under a file lock, the others wait
and read it), so MediaPipe runs once per session, not once per worker. Treat it as read-only.
"""

import os

import pytest

from artser_jax.data import prepare
from tests.fixture_corpora import exclusive_build

TINY_CONFIG = "emotion4"


def session_shared_dir(tmp_path_factory, name):
    """A folder shared by every xdist worker of this session (the session's own temp folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / name


@pytest.fixture(scope="session")
def tiny_data_dir(tiny_corpora, tmp_path_factory):
    data_dir = session_shared_dir(tmp_path_factory, "tiny_data")
    data_dir.mkdir(exist_ok=True)
    with exclusive_build(data_dir):
        for corpus in ("crema_d", "msp_improv"):
            # Idempotent: a dataset another worker finished is found and left as it is.
            prepare.prepare_dataset(corpus, tiny_corpora / corpus, data_dir, config_names=(TINY_CONFIG,),
                                     num_workers=2, progress=False)
    return data_dir
