#!/usr/bin/env bash
# The real-GPU check of issue 20 in one command (bench/gpu/check.py says what it runs and writes):
#
#   bench/gpu/run.sh OUT [cuda|cpu]
#
# On the GPU machine (Python 3.12, torch + CUDA, transformers, peft, pandas, scipy, networkx; no simpy, no network)
# it first lays out, with no build tool and no network, /tmp/lobra-site: the wheels carried in .whl/ unpacked (simpy:
# bench/gpu/wheels.sh downloads it here) and the lobra namespace as links to this tree's folders, as pyproject.toml
# maps them. Where lobra already imports (this repo's .venv, with PYTHON=.venv/bin/python) nothing is laid out,
# unless LOBRA_SITE names a folder to lay it out in.
set -u
OUT=${1:?usage: bench/gpu/run.sh OUT [cuda|cpu]}
DEVICE=${2:-cuda}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/../.."
if [ -n "${LOBRA_SITE:-}" ] || ! "$PYTHON" -c "import lobra.sim, lobra.executor" 2>/dev/null; then
    site=${LOBRA_SITE:-/tmp/lobra-site}
    rm -rf "$site" && mkdir -p "$site/lobra" || exit 2
    for wheel in .whl/*.whl; do
        [ -e "$wheel" ] && { "$PYTHON" -m zipfile -e "$wheel" "$site" || exit 2; }
    done
    for f in lobra/*; do ln -s "$PWD/$f" "$site/lobra/"; done
    for d in costmodel traces policies sim executor calibration analysis; do ln -s "$PWD/$d" "$site/lobra/$d"; done
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    "$PYTHON" -c "import lobra.sim, lobra.executor" || { echo "run.sh: lobra does not import here" >&2; exit 2; }
fi
exec "$PYTHON" bench/gpu/check.py --device "$DEVICE" --out "$OUT"
