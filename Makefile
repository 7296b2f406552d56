# llmlab — the README's commands. `make lab` opens the lab; `make test` runs every test.
# Everything installs into .venv; nothing relies on what was installed by hand.

PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
PY         := $(BIN)/python
TORCH_SPEC ?= torch==2.13.0
PORT       ?= 8888
STAMP      := $(VENV)/.llmlab-installed
NBDEV_WORKERS ?= 2

.PHONY: lab test setup export sync nbtest pytest docs bench gpu clean outputs fragility readme help

help:
	@echo "make lab    - set up .venv if needed and open JupyterLab on nbs/"
	@echo "make test   - set up if needed, then: sync check, nbdev_test (all notebooks), pytest"
	@echo "make docs   - render the documentation site into docs/"
	@echo "make bench  - run the kernel benchmarks that apply to this machine"
	@echo "make gpu    - the GPU run in one command: GPU tests, notebooks' gpu cells, every bench, one summary"
	@echo "make outputs NB=nbs/NN_slug.ipynb - re-execute notebooks and save clean outputs"
	@echo "make fragility NB=nbs/NN_slug.ipynb [ROUNDING=avx2|default|native] - every assert that fails under another"
	@echo "               CPU's float rounding (run it before trusting an assert on a trained model's numbers)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "make setup: could not create $(VENV) with $(PYTHON)."; \
	  echo "  Install Python >= 3.10 with venv (Debian: apt-get install python3-venv) or run: make PYTHON=/path/to/python3"; exit 1; }
	@$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	@echo "make setup: installing $(TORCH_SPEC) (override with TORCH_SPEC=...)"
	@$(PY) -m pip install -q "$(TORCH_SPEC)" || { \
	  echo "make setup: pip could not install $(TORCH_SPEC)."; \
	  echo "  Is the package index reachable? Offline, point pip at a wheel: make TORCH_SPEC=/path/to/torch.whl"; exit 1; }
	@echo "make setup: installing llmlab (editable) with the dev extras"
	@$(PY) -m pip install -q -e ".[dev]" || { \
	  echo "make setup: pip could not install llmlab[dev] (see pip's message above)."; \
	  echo "  Check the network to the package index, then run make again."; exit 1; }
	@touch $(STAMP)

export: setup
	@$(BIN)/nbdev_export

readme: setup
	@$(PY) tools/build_readme.py

lab: setup export
	@echo "make lab: starting JupyterLab on nbs/ at http://127.0.0.1:$(PORT)/lab (Ctrl+C stops it)"
	@$(BIN)/jupyter-lab --notebook-dir=nbs --ip=127.0.0.1 --port=$(PORT) --no-browser \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) || { \
	  echo "make lab: JupyterLab did not start. If port $(PORT) is busy, run: make lab PORT=8899"; exit 1; }

sync: setup
	@echo "== make test: 1/3 sync (nbdev_export leaves no diff, notebooks clean, README from index) =="
	@$(PY) -m pytest -q -p no:cacheprovider tests/test_sync.py || { \
	  echo "make test: step 1 (sync) failed: run 'make export' and '.venv/bin/nbdev_clean', then 'make readme', and commit."; exit 1; }

nbtest: setup
	@echo "== make test: 2/3 nbdev_test over every notebook, each in its own process (skipping slow/gpu cells) =="
	@# A fresh process per notebook (one notebook's process-wide settings cannot reach another), $(NBDEV_WORKERS) at a time
	@# with one OpenMP thread each; 03_gpt (which trains the shared presets) first, notebooks that load a preset last.
	@OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) tools/run_nbtests.py --workers $(NBDEV_WORKERS) || { \
	  echo "make test: step 2 (nbdev_test) failed: the notebook named above raised; open it with 'make lab'."; exit 1; }

pytest: setup
	@echo "== make test: 3/3 pytest =="
	@$(PY) -m pytest tests $(PYTEST_ARGS) || { \
	  echo "make test: step 3 (pytest) failed: see the summary above."; exit 1; }

test: sync nbtest pytest

docs: setup
	@$(PY) tools/build_docs.py

bench: setup
	@$(PY) kernels/run_all.py

# No setup here: a bare GPU machine has torch, triton and numpy but maybe no package index, so use .venv when it
# exists and the system Python otherwise.
gpu:
	@$$( [ -x $(PY) ] && echo $(PY) || echo $(PYTHON) ) tools/gpu_check.py $(GPU_ARGS)

outputs: setup
	@$(PY) tools/execute_nbs.py $(NB)

ROUNDING ?= avx2
fragility: setup
	@test -n "$(NB)" || { echo "make fragility: name the notebooks, e.g. make fragility NB=nbs/32_process_reward.ipynb"; exit 1; }
	@OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) tools/fragility.py --rounding $(ROUNDING) $(NB)

clean:
	rm -rf docs _proc .pytest_cache
