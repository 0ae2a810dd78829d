"""Every shipped config builds for every method, and the two real-corpus configs are each other's reverse."""

import importlib
import sys

import pytest

from tests.fixture_train import REPO

sys.path.insert(0, str(REPO / "configs"))
import common  # noqa: E402  pylint: disable=g-import-not-at-top


@pytest.mark.parametrize("method", common.METHODS)
@pytest.mark.parametrize("name, source, target", [("crema_to_msp", "crema_d", "msp_improv"),
                                                  ("msp_to_crema", "msp_improv", "crema_d")])
def test_real_corpora_configs(name, source, target, method):
    config = importlib.import_module(name).get_config(f"method={method},encoder=logmel")
    assert (config.source.corpus, config.target.corpus) == (source, target)
    assert config.method == method and config.model.encoder == "logmel"
    assert config.segments.method == "windows"
    assert (config.loss.gamma == 0.0) == (method == "source_only")


def test_unknown_config_argument_is_named():
    with pytest.raises(KeyError, match="encodr"):
        importlib.import_module("crema_to_msp").get_config("encodr=logmel")
