"""Keeps the launch scripts' logs readable: INFO records of Orbax, Grain and JAX internals are dropped."""

import logging


class _LibraryInfoFilter(logging.Filter):
    """Drops INFO records of Orbax, Grain and JAX internals, which would bury the run's own progress."""

    def filter(self, record):
        return record.levelno >= logging.WARNING or not any(
            part in record.pathname for part in ("/orbax/", "/grain/", "/jax/", "/jaxlib/"))


def quiet_library_logs():
    """Installs `_LibraryInfoFilter` on the absl and root handlers (launch scripts call this)."""
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

    for handler in [absl_logging.get_absl_handler(), *logging.getLogger().handlers]:
        if not any(isinstance(f, _LibraryInfoFilter) for f in handler.filters):
            handler.addFilter(_LibraryInfoFilter())
