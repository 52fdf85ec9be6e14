# dscall: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint demo bench bench-ocr soak huge audit clean samples

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "dscall needs Python 3.10+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,fast]'
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check dscall tests bench scripts
	$(BIN)/ruff format --check dscall tests bench scripts
	$(BIN)/mypy --strict dscall

# The OCR tests need tesseract (eng + chi_sim) and a CJK font, which are system packages;
# without them those tests are skipped here (CI installs them in .ci/run and fails instead).
test: lint
	@command -v tesseract >/dev/null 2>&1 || echo "note: tesseract is not installed, so the OCR \
	tests are skipped: apt-get install tesseract-ocr tesseract-ocr-chi-sim fonts-wqy-zenhei"
	$(BIN)/pytest

demo: install
	$(BIN)/dscall process samples/ --out results.parquet --documents-out documents.parquet \
		--mode map-reduce --chunk-tokens 256 --overlap-tokens 0 --mock

bench: install
	$(BIN)/python -m bench

# OCR engines (tesseract, rapidocr-onnxruntime) on generated scans, and dscall's --ocr path.
bench-ocr: install
	@command -v tesseract >/dev/null 2>&1 || { echo "make bench-ocr needs tesseract: \
	apt-get install tesseract-ocr tesseract-ocr-chi-sim fonts-wqy-zenhei"; exit 1; }
	$(BIN)/python -m pip install --quiet 'rapidocr-onnxruntime>=1.4,<2' \
		|| echo "rapidocr-onnxruntime does not install here: compared without it"
	$(BIN)/python -m bench.bench_ocr

# 20,000 chunks against the simulator with every fault on at once (~4 min): rows lost must be 0.
soak: install
	$(BIN)/python -m bench.bench_soak

# Huge and hostile inputs: 200 MB text, a 2,000-page PDF, 100,000 tiny files, fuzzed documents.
huge: install
	$(BIN)/python -m bench.bench_huge

# Known vulnerabilities in the installed dependencies (needs access to PyPI's JSON API / OSV).
audit: install
	$(BIN)/python -m pip install --quiet 'pip-audit>=2.7,<3'
	$(BIN)/pip-audit --skip-editable --progress-spinner off

samples: install
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage .coverage.* bench/results.json
