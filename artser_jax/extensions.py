"""User extensions: modules that register their own methods, encoders or corpora.

`launch/train.py`, `launch/evaluate.py` and `launch/predict.py` take
`--extension_modules=my_lab.methods,path/to/my_encoder.py`: importable module names, or `.py` files
imported by path. They are imported before absl parses the other flags, because `--config` builds the
config at parse time and may already name an extension's method or encoder.
"""

import importlib
import importlib.util
import pathlib
import sys

from absl import flags

FLAG_NAME = "extension_modules"


def define_flag():
    return flags.DEFINE_list(
        FLAG_NAME, [], "Modules registering your own methods, encoders or corpora: importable names or .py "
        "files, imported before the config is read.")


def import_modules(names):
    """Imports each module name or `.py` path of `names` (a `.py` file is imported under its stem)."""
    for name in names:
        if name.endswith(".py"):
            path = pathlib.Path(name).absolute()
            if not path.is_file():
                raise FileNotFoundError(f"--{FLAG_NAME}: {path} does not exist")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)


def import_from_argv(argv):
    """Imports the modules named by `--extension_modules=...` (or `--extension_modules ...`) in `argv`."""
    names = []
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{FLAG_NAME}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{FLAG_NAME}" and i + 1 < len(argv):
            value = argv[i + 1]
        else:
            continue
        names += [name for name in value.split(",") if name]
    import_modules(names)
    return names
