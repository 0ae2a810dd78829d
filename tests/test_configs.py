"""Every shipped config builds for every registered method; the real-corpus entry points are each
other's reverse; configs are a package (loaded by path through the thin files in configs/)."""

import importlib.util

import pytest

from artser_jax import methods
from artser_jax.configs import common
from artser_jax.configs import real_corpora
from tests.fixture_train import REPO


def _load(name, arg):
    """The config of `configs/<name>.py:<arg>`, loaded by path as `--config=` loads it."""
    spec = importlib.util.spec_from_file_location(f"config_{name}", REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.mark.parametrize("method", [m for m in methods.names() if m not in methods.DIAGNOSTIC_METHODS])
@pytest.mark.parametrize("name, source, target", [("crema_to_msp", "crema_d", "msp_improv"),
                                                  ("msp_to_crema", "msp_improv", "crema_d")])
def test_real_corpora_configs(name, source, target, method):
    config = _load(name, f"method={method},encoder=logmel")
    assert (config.source.corpus, config.target.corpus) == (source, target)
    assert config.method == method and config.model.encoder == "logmel"
    assert config.segments.method == "phones_or_windows"
    assert config.loss.gamma == methods.get(method).default_gamma
    same = _load("real_corpora", f"direction={name},method={method},encoder=logmel")
    assert same.to_dict() == config.to_dict()


@pytest.mark.parametrize("method", methods.names())
def test_demo_config_every_method(method):
    config = _load("demo", f"direction=msp_to_crema,method={method},tiny")
    assert config.source.tfds_name == "msp_improv_av/emotion4"
    assert config.target.tfds_name == "crema_d_av/emotion4"


def test_direction_names():
    assert common.parse_direction("crema_d_to_msp_improv") == ("crema_d", "msp_improv")
    with pytest.raises(ValueError, match="Unknown direction 'crema_to_crema'"):
        common.parse_direction("crema_to_crema")
    with pytest.raises(ValueError, match="Unknown direction"):
        common.parse_direction("crema_d_to_crema_d")


def test_unknown_config_argument_is_named():
    with pytest.raises(KeyError, match="encodr"):
        _load("crema_to_msp", "encodr=logmel")
    with pytest.raises(KeyError, match="direction"):  # the entry point fixes the direction
        _load("crema_to_msp", "direction=msp_to_crema")
    with pytest.raises(ValueError, match="unknown method 'agc'; registered: agcc, layer_anchored"):
        real_corpora.get_config("method=agc")


@pytest.mark.parametrize("name", ["crema_to_msp", "msp_to_crema", "real_corpora"])
def test_real_corpora_configs_refuse_the_oracle_diagnostic(name):
    with pytest.raises(ValueError, match="oracle_emotion.*reads the target corpus's labels"):
        _load(name, "method=oracle_emotion,encoder=logmel")


@pytest.mark.parametrize("method", methods.names())
def test_controls_config_every_method(method):
    config = _load("controls", f"direction=msp_to_crema,method={method}")
    assert (config.source.corpus, config.target.corpus) == ("msp_improv", "crema_d")
    assert config.checkpoint.keep_latest * config.eval_every > config.total_steps
