# estbench developer targets. `make install` builds .venv with the CPU torch wheel first
# (a plain `pip install torch` would pull a multi-GB CUDA build).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
STORE ?= estbench.duckdb

.PHONY: install test test-all test-data test-ray test-browser lint format demo bench bench-all faults clean

$(BIN)/estbench: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev,nb301]'
	touch $(BIN)/estbench

install: $(BIN)/estbench

test: install
	$(BIN)/pytest -q

test-data: install
	$(BIN)/pytest -q -m data

# score --executor ray on a local Ray runtime (skip, saying why, without the ray extra)
test-ray: install
	$(BIN)/pytest -q -m ray -rs

# The HTML report loaded in headless Chromium (the tests skip, saying why, without it).
test-browser: install
	$(BIN)/pytest -q -rs -m browser

test-all: install
	$(BIN)/pytest -q -m "not gpu"

lint: install
	$(BIN)/ruff check estbench tests benchmarks
	$(BIN)/ruff format --check estbench tests benchmarks

format: install
	$(BIN)/ruff format estbench tests benchmarks
	$(BIN)/ruff check --fix estbench tests benchmarks

# The main job on the default data: NB201 truth, structural scores for all 15,625
# architectures, the criteria, the Table A9 layout report, the complexity-level bias and
# the HTML report (report.html: the sections structural scores fill, the others listed).
demo: install
	$(BIN)/estbench truth load --space nb201 --store $(STORE)
	$(BIN)/estbench score --space nb201 --estimator params --estimator flops --estimator relu --estimator params_live --estimator relu_live --store $(STORE)
	$(BIN)/estbench criteria --space nb201 --truth cifar10-test --protocol deiso --k 5% --store $(STORE)
	$(BIN)/estbench report --space nb201 --truth cifar10-test --protocol deiso --store $(STORE)
	$(BIN)/estbench bias complexity --space nb201 --by params --store $(STORE)
	$(BIN)/estbench report --space nb201 --truth cifar10-test --store $(STORE) --html report.html

# Speed targets as ratios measured in one run (machines are noisy: interleaved repeats).
bench: install
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_zeroshot.py
	$(BIN)/python benchmarks/bench_zeroshot.py --batch 64 --newer --no-reference --repeats 3
	$(BIN)/python benchmarks/bench_bias.py
	$(BIN)/python benchmarks/bench_variance.py
	$(BIN)/python benchmarks/bench_report.py

# + flat memory over 1,000 zero-shot archs, one-shot step/eval cost, random-arch ratios,
# default threads next to a busy process vs idle (train epoch, 20 zero-shot archs).
bench-all: bench
	$(BIN)/python benchmarks/bench_zeroshot.py --no-reference --sample 8
	$(BIN)/python benchmarks/bench_zeroshot_memory.py --archs 1000 --batch-size 4
	$(BIN)/python benchmarks/bench_oneshot.py
	$(BIN)/python benchmarks/bench_threads.py
	$(BIN)/python benchmarks/bench_forgetting.py --repeats 1
	$(BIN)/python benchmarks/bench_store.py

# Kill `score` and `train` 20 times each at random points; reruns must complete with one
# row per key, truthful run rows and bit-identical results (a few minutes on 2 cores).
faults: install
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/fault_injection.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
