"""Test set-up: 8 fake CPU devices for every test, so sharded code paths run on one CPU."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

pytest_plugins = ["tests.fixture_gestures", "tests.fixture_datasets", "tests.fixture_corpora", "tests.fixture_train"]


def pytest_collection_modifyitems(items):
    """Files holding a `slow` test run first, so that xdist's per-file workers (scripts/test.sh) end together."""
    has_slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in has_slow)
