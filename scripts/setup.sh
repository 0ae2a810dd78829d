#!/usr/bin/env bash
# One set-up path for a fresh Debian/Ubuntu machine with Python 3.11; safe to run again (it then does nothing).
#   1. Debian packages (eSpeak NG for the demo corpora, GL/GLib for OpenCV), via apt-get when missing;
#   2. .venv/ with torch==2.13.0 (CPU) first, then the pinned requirements, the test extras and the package;
#   3. the assets (MediaPipe face model, real test media), checksum-verified, into $ARTSER_CACHE_DIR
#      (default ~/.cache/artser_jax).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng libgl1 libglib2.0-0)  # speech synthesis for the demo corpora; OpenCV's GUI libraries
PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.artser-setup-stamp
did_work=0

say() { printf '[setup] %s\n' "$*"; }

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  if ! { "${sudo_cmd[@]}" apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"; }; then
    say "ERROR: could not install ${missing[*]} with apt-get. Install them yourself" \
        "(sudo apt-get install ${missing[*]}) and run this script again."
    exit 1
  fi
  did_work=1
fi

if ! command -v "$PYTHON" >/dev/null; then
  say "ERROR: $PYTHON not found. artser_jax needs Python 3.11; set PYTHON=/path/to/python3.11."
  exit 1
fi

wanted=$(cat requirements.txt requirements-test.txt requirements-beam.txt requirements-export.txt setup.cfg pyproject.toml \
  scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f $STAMP && $(cat "$STAMP") == "$wanted" ]]; then
  :
else
  [[ -x $VENV/bin/python ]] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  pip_install() {
    # This machine's pip configuration warns about every unused local index; keep the log readable.
    "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" 2>&1 \
      | grep -v "^WARNING: Location .* is ignored" || true
    return "${PIPESTATUS[0]}"
  }
  say "installing torch==2.13.0 (CPU build) first, so nothing pulls a CUDA build"
  pip_install torch==2.13.0
  say "installing pinned requirements, test extras and the beam extra (one resolution for all three)"
  pip_install -r requirements.txt -r requirements-test.txt -r requirements-beam.txt
  pip_install --no-deps -e .
  say "installing the ONNX converter without its unused dependencies (requirements-export.txt says why)"
  pip_install --no-deps -r requirements-export.txt
  say "checking the environment (pip check; jax2onnx's unused requirements are the known exception)"
  unmet=$("$VENV/bin/python" -m pip check 2>&1 | grep -v "^No broken requirements found" \
          | grep -v "^jax2onnx 0\.17\.1 \(requires\|has requirement\) " || true)
  if [[ -n $unmet ]]; then
    echo "$unmet"
    say "ERROR: the pinned packages do not install together (pip check above)"
    exit 1
  fi
  echo "$wanted" > "$STAMP"
  did_work=1
fi

assets_message=$("$VENV/bin/python" launch/fetch_assets.py 2>&1) || { echo "$assets_message"; exit 1; }
if [[ $assets_message == *"already present"* ]]; then
  :
else
  echo "$assets_message"
  did_work=1
fi

if ((did_work)); then
  say "done"
else
  say "nothing to do: Debian packages, $VENV and the assets are already in place"
fi
