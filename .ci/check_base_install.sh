#!/usr/bin/env bash
# The base wheel (no extras) on every Python 3.10-3.13 found here: installs without torch or onnx,
# imports the runtime torch-free, runs a real exported model through `rnnedge info` and `classify`,
# and runs the runtime's own tests (tests/runtime) on tiny real models written by the train venv.
# Usage: .ci/check_base_install.sh WHEEL TRAIN_VENV
set -euo pipefail
wheel=$1 train_venv=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$train_venv/bin/rnnedge" train mnist-lstm --out "$work/run" --max-steps 30 --hidden-size 16 --quiet > /dev/null
"$train_venv/bin/rnnedge" export "$work/run/checkpoint.pt" -o "$work/model.onnx" > /dev/null
"$train_venv/bin/python" tests/write_test_models.py "$work/test-models"
found=0
for version in 3.10 3.11 3.12 3.13; do
    py=""
    for candidate in "$(command -v "python$version" || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version"; do
        if [ -x "$candidate" ] && "$candidate" -c pass 2>/dev/null; then py=$candidate; break; fi
    done
    [ -n "$py" ] || continue
    found=$((found + 1))
    "$py" -m venv "$work/venv$version"
    "$work/venv$version/bin/python" -m pip install --quiet "$wheel"
    if "$work/venv$version/bin/python" -m pip show torch > /dev/null 2>&1 || \
       "$work/venv$version/bin/python" -m pip show onnx > /dev/null 2>&1; then
        echo "python $version: the base install pulled in torch or onnx" >&2; exit 1
    fi
    "$work/venv$version/bin/python" -c "import sys, rnnedge.runtime, rnnedge.cli.main; \
bad = {'torch', 'onnx'} & {m.split('.')[0] for m in sys.modules}; assert not bad, bad"
    "$work/venv$version/bin/rnnedge" info "$work/model.onnx" --json > /dev/null
    echo "python $version: $("$work/venv$version/bin/rnnedge" classify "$work/model.onnx" --limit 200 --quiet)"
    "$work/venv$version/bin/python" -m pip install --quiet pytest hypothesis
    if ! RNNEDGE_TEST_MODELS="$work/test-models" "$work/venv$version/bin/python" -m pytest -q -p no:cacheprovider \
        tests/runtime > "$work/runtime-tests.log" 2>&1; then
        cat "$work/runtime-tests.log"; echo "python $version: the runtime's tests failed on the base install" >&2; exit 1
    fi
    echo "python $version, base install, tests/runtime: $(tail -1 "$work/runtime-tests.log")"
done
[ "$found" -gt 0 ] || { echo "no python 3.10-3.13 found" >&2; exit 1; }
