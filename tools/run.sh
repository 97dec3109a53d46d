#!/usr/bin/env bash
# The two entry points of the project, each of which sets up everything it needs first:
#   bash tools/run.sh demo   convert a torch model to Paddle and compare the two (the main job)
#   bash tools/run.sh test   the whole parity test suite (what CI runs)
# The environment lives in .venv (override with PADDLE_VIT_VENV) and is rebuilt when setup.cfg changes.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${PADDLE_VIT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
# torch 2.14.1 / torchvision 0.29.1 are the pair that import together (timm needs torchvision).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
STAMP="$VENV/.paddle_vit-setup"
want="$(cat setup.cfg tools/run.sh | sha256sum | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "== setting up $VENV (torch, paddlepaddle, timm, ...); this takes a few minutes once"
    "$PYTHON" -m venv "$VENV"
    log="$VENV/setup.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install "${TORCH_PINS[@]}" &&
           "$VENV/bin/python" -m pip install -e ".[test,plot,onnx]" "${TORCH_PINS[@]}"; } > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "== set-up failed; the whole log is in $log" >&2
        exit 1
    fi
    echo "$want" > "$STAMP"
fi

# Equal, explicit threads for both frameworks (Paddle would pin itself to 1 thread otherwise).
case "${1:-}" in
    demo) shift
          export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
          exec "$VENV/bin/python" tools/demo.py "$@" ;;
    # one pytest worker per core, one thread each (the tolerances do not depend on threads)
    test) shift
          export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
          exec "$VENV/bin/python" -m pytest parity_tests -q -n auto "$@" ;;
    *) echo "usage: bash tools/run.sh demo|test [args...]" >&2; exit 2 ;;
esac
