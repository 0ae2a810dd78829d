"""Test set-up: 8 fake CPU devices for every test, so sharded code paths run on one CPU."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

pytest_plugins = ["tests.fixture_gestures", "tests.fixture_datasets", "tests.fixture_corpora", "tests.fixture_train"]
