# The two commands of the README: `make demo` and `make test`. Both create the virtual
# environment (.venv) and install the project with its dev extra on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-long fuzz reliability lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "massagectl needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/massagectl demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy firmware_bridge dsp device
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n 2 --dist worksteal

# The long runs (not for CI's every push): the whole suite with hypothesis at 2,000 random
# examples per property instead of the CI profile's derandomized 100, and the whole fault
# matrix (serial and BLE) instead of its short form.
test-long: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy firmware_bridge dsp device
	HYPOTHESIS_PROFILE=long QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n 2 --dist worksteal --timeout 1800

# Only the fuzzing (hypothesis, random, 2,000 examples per property): the decoder, every file
# parser, the sim --fault flags.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest --timeout 1800 tests/test_protocol.py tests/test_bad_files.py tests/test_sim_faults.py

# docs/reliability.md: the whole fault matrix on serial and BLE, as a table.
reliability: $(STAMP)
	$(BIN)/python docs/make_reliability.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every benchmark prints its figures (a few minutes in all; the README quotes them).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_protocol
	$(BIN)/python -m benchmarks.bench_dsp
	$(BIN)/python -m benchmarks.bench_stop_latency
	$(BIN)/python -m benchmarks.bench_recording
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks.bench_plot
	$(BIN)/python -m benchmarks.bench_ble
	$(BIN)/python -m benchmarks.bench_scale

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info
