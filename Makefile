# The MetaFuse book. Quick start:   make book     then     make test
PROFILE ?= smoke
DEVICE ?= auto
SEED ?= 0
JOBS ?= auto
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book execute site test venv clean-site results-system

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

book: $(STAMP)
	$(PY) -m mfbook.run_book execute --profile "$(PROFILE)" --device "$(DEVICE)" --seed "$(SEED)" --jobs "$(JOBS)"
	$(MAKE) --no-print-directory site

execute: $(STAMP)
	$(PY) -m mfbook.run_book execute --profile "$(PROFILE)" --device "$(DEVICE)" --seed "$(SEED)" --jobs "$(JOBS)"

site: $(STAMP)
	$(PY) -m mfbook.run_book site
	rm -rf _build/html _build/.doctrees
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --quiet

test: $(STAMP)
	$(PY) -m pytest

clean-site:
	rm -rf _build book/_site

# On a GPU machine whose own python already has torch with CUDA: execute the book and the benchmarks there without a
# venv (tools/gpu_book.sh; WHEELS=DIR installs papermill & co. from wheels on an offline machine), then bring
# results/$(PROFILE) back and run `make site` where the site toolchain is installed.
WHEELS ?=
results-system:
	bash tools/gpu_book.sh --profile "$(PROFILE)" $(if $(WHEELS),--wheels "$(WHEELS)")
