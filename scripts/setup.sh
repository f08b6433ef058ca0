#!/usr/bin/env bash
# Installs every dependency (Debian packages; CUDA from /usr/local/cuda when present), builds bsattn
# into build/, and runs the demo. Options: --no-demo (build only), --no-install (skip apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
demo=1 install=1
for a in "$@"; do
  case "$a" in
    --no-demo) demo=0 ;;
    --no-install) install=0 ;;
    *) echo "setup.sh: unknown option $a (allowed: --no-demo, --no-install)" >&2; exit 2 ;;
  esac
done

PACKAGES=(build-essential cmake ninja-build pkg-config git
          libcli11-dev nlohmann-json3-dev libeigen3-dev doctest-dev
          libcairo2-dev fonts-dejavu-core python3 python3-numpy python3-pil
          python3-pip  # tests/python/test_python_package.py checks `pip install ./python` (into a folder)
          poppler-utils  # pdftotext: tests/python/test_render_pdf_svg.py reads the text of our PDFs
          clang libclang-rt-14-dev)  # clang's libFuzzer for the fuzz targets ctest runs (scripts/fuzz.sh)
if [ "$install" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

cuda=OFF
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then cuda=ON; fi
# BSATTN_NATIVE: the CPU reference built for this machine's instruction sets, since the binary is built
# where it runs (CI too builds and tests on its own machine and ships nothing).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBSATTN_CUDA=$cuda -DBSATTN_NATIVE=ON >/dev/null
cmake --build build -j"$(nproc)"

if [ "$demo" = 1 ]; then
  exec scripts/demo.sh
fi
