"""Building a corpus's datasets: `prepare_dataset` (what `launch/prepare_data.py` and the demo call).

The corpus name is looked up in the corpus registry (`artser_jax.data.corpora`), so a newly registered
corpus is built the same way.
"""

import logging
import pathlib
import shlex
import shutil

import tensorflow_datasets as tfds

from artser_jax.data import builders
from artser_jax.data import corpora
from artser_jax.data import manifest


def prepare_dataset(corpus, manual_dir, data_dir, config_names=("emotion4",), num_workers=1, verify=False,
                    manifest_path=None, max_skip_fraction=builders.DEFAULT_MAX_SKIP_FRACTION, landmark_cache_dir=None,
                    face_model_path=None, progress=True, alignment_dir=None, force=False, native_logs=False,
                    beam_runner=None, beam_options=None):
    """Builds the `config_names` of a corpus's dataset into `data_dir`; {config: (status, path)}.

    Idempotent: a config already built is reported as such and left alone, unless `force`: then it is
    rebuilt (from the landmark cache, which is keyed by file content), and the previous build is put back
    if the rebuild fails. With `verify`, the media are checked against the manifest (default
    `<manual_dir>/media-manifest.tsv`) before any extraction, and any missing, truncated or corrupted file
    stops the build with a report. A successful build removes a `*-FAILED-skip_report.tsv` of an earlier
    failed one. `alignment_dir`: the phone TextGrids come from there (`launch/align.py`'s output or
    MFA's) instead of beside the audio.

    `beam_runner` (a Beam runner name, e.g. "DirectRunner", "DataflowRunner"): build through TFDS's Beam
    support instead of the process pool (`num_workers` is then unused), with `beam_options` (a command-line
    string such as "--direct_num_workers=2 --direct_running_mode=multi_processing") passed to the runner.
    Same dataset, cache, skip report and threshold; needs the `beam` extra.
    """
    builder_class = corpora.get(corpus).builder
    manual_dir = pathlib.Path(manual_dir).expanduser()
    builder_class.check_manual_dir(manual_dir)
    if alignment_dir is not None and not pathlib.Path(alignment_dir).expanduser().is_dir():
        raise FileNotFoundError(f"{alignment_dir}: alignment directory not found (write it with launch/align.py)")
    data_dir = pathlib.Path(data_dir).expanduser()
    unknown = [name for name in config_names if name not in builder_class.builder_configs]
    if unknown:
        raise ValueError(f"unknown {builder_class.name} configs {unknown}; known: "
                         f"{sorted(builder_class.builder_configs)}")
    download_config = _download_config(manual_dir, beam_runner, beam_options)
    builder_kwargs = dict(beam=beam_runner is not None, num_workers=num_workers,
                          max_skip_fraction=max_skip_fraction,
                          landmark_cache_dir=landmark_cache_dir, face_model_path=face_model_path, progress=progress,
                          alignment_dir=alignment_dir and str(pathlib.Path(alignment_dir).expanduser()),
                          native_logs=native_logs)
    to_build = {name: builder_class(config=name, data_dir=str(data_dir), **builder_kwargs)
                for name in config_names}
    results = {}
    for name, builder in to_build.items():
        if builder.is_prepared() and not force:
            logging.info("%s/%s is already built at %s; nothing to do (--force rebuilds it)", builder.name, name,
                         builder.data_path)
            results[name] = ("already built", builder.data_path)
    if verify and len(results) < len(to_build):
        _verify_media(builder_class, manual_dir, data_dir, manifest_path, progress)
    for name, builder in to_build.items():
        if name in results:
            continue
        previous = None
        if builder.is_prepared():
            previous = builder.data_path.parent / f".{builder.data_path.name}-replaced-by-force"
            if previous.exists():
                shutil.rmtree(previous)
            builder.data_path.rename(previous)
            # A fresh builder: the old one carries the replaced dataset's info.
            builder = builder_class(config=name, data_dir=str(data_dir), **builder_kwargs)
        try:
            builder.download_and_prepare(file_format="array_record", download_config=download_config)
        except BaseException:
            if previous is not None:
                previous.rename(builder.data_path)
                logging.warning("%s/%s: the forced rebuild failed; the previous build is back at %s",
                                builder.name, name, builder.data_path)
            raise
        if previous is not None:
            shutil.rmtree(previous)
        builder.failed_report_path.unlink(missing_ok=True)
        logging.info("%s/%s built at %s", builder.name, name, builder.data_path)
        results[name] = ("rebuilt" if previous is not None else "built", builder.data_path)
    return results


def _download_config(manual_dir, beam_runner, beam_options):
    """TFDS's DownloadConfig; with a Beam runner and its options when one is asked for."""
    # try_download_gcs=False: these datasets are never on TFDS's bucket, so do not probe the network.
    config = dict(manual_dir=str(manual_dir), try_download_gcs=False)
    if beam_runner is None:
        if beam_options:
            raise ValueError(f"beam options {beam_options!r} given without a Beam runner (--beam_runner)")
        return tfds.download.DownloadConfig(**config)
    try:
        from apache_beam.options import pipeline_options
    except ImportError as error:
        raise RuntimeError(f"--beam_runner={beam_runner} needs Apache Beam, the optional `beam` extra: "
                           f"pip install -e .[beam] ({error})") from None
    options = pipeline_options.PipelineOptions(shlex.split(beam_options or ""))
    runner = _local_direct_runner(options) if beam_runner == "DirectRunner" else beam_runner
    return tfds.download.DownloadConfig(beam_runner=runner, beam_options=options, **config)


def _local_direct_runner(options):
    """The runner Beam's DirectRunner picks for a batch pipeline when it does not use Prism: the FnApiRunner,
    which honours --direct_num_workers and --direct_running_mode, with the options passed on to its workers
    as the DirectRunner passes them. Beam 2.77's DirectRunner tries Prism first, which downloads a Go binary
    from GitHub at run time (nothing here downloads at run time) and ignores those two options."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability import portable_runner
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    encoded_options = portable_runner.JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded_options)))


def _verify_media(builder_class, manual_dir, data_dir, manifest_path, progress):
    manifest_path = pathlib.Path(manifest_path or manual_dir / manifest.MANIFEST_NAME)
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: media manifest not found; pass --manifest=PATH to verify "
                                f"(for CREMA-D: the media-manifest.tsv shipped with the metadata)")
    report = manifest.verify_media(manual_dir, manifest.read_manifest(manifest_path),
                                   prefixes=builder_class.MANIFEST_PREFIXES, progress=progress)
    logging.info("media verification: %s", report.summary())
    if not report.ok:
        data_dir.mkdir(parents=True, exist_ok=True)
        report_path = data_dir / f"{builder_class.CORPUS}-media-verification.tsv"
        report.write_tsv(report_path)
        raise RuntimeError(f"{manual_dir}: {report.summary()}\nFull report: {report_path}")
