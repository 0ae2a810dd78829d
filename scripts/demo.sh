#!/usr/bin/env bash
# README command 1: set up (if needed), then run the whole demo on generated corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python launch/demo.py "$@"
