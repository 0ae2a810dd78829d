"""The asset cache: every fetched file is verified, a second fetch downloads nothing, lookups never download."""

import shutil

import pytest

from artser_jax import assets


def _fetched_files():
    files = [(assets.FACE_MODEL_NAME, assets.FACE_MODEL_SHA256)]
    files += [(f"{assets.TEST_MEDIA_DIR}/{m.name}", m.sha256) for d in assets.TEST_MEDIA for m in d.members]
    root = assets.cache_dir()
    if not all((root / name).is_file() for name, _ in files):
        pytest.skip(f"assets missing in {root} (set-up fetches them with launch/fetch_assets.py)")
    return root, files


def test_the_cache_holds_every_asset_with_its_recorded_hash():
    root, files = _fetched_files()
    for name, sha256 in files:
        assert assets.sha256_of(root / name) == sha256, name


def test_a_second_fetch_finds_everything_and_downloads_nothing(tmp_path, monkeypatch):
    root, files = _fetched_files()
    for name, _ in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, tmp_path / name)

    def no_download(*args, **kwargs):
        raise AssertionError(f"unexpected download {args[:1]}")

    monkeypatch.setattr(assets.pooch, "retrieve", no_download)
    assert assets.fetch_all(tmp_path, log=lambda message: None) is False


def test_lookups_name_the_missing_file_and_the_fix(tmp_path):
    with pytest.raises(assets.AssetError, match=r"test_media/arctic_a0009.wav not found.*fetch_assets.py"):
        assets.test_media_path("arctic_a0009.wav", tmp_path)
    with pytest.raises(assets.AssetError, match="not a known test-media file"):
        assets.test_media_path("nothing.wav", tmp_path)
