#!/usr/bin/env bash
# Runs every test that needs no GPU (installs dependencies and builds first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-demo
ctest --test-dir build --output-on-failure -LE gpu -j"$(nproc)" "$@"
