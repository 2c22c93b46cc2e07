# The MetaFuse book. Quick start:   make book     then     make test
# `make book` writes the smoke results to _build/results/smoke (ignored by git: `git status` stays clean); the
# committed golden copy results/smoke changes only through `make golden`; PROFILE=full writes to results/full
# (committed, executed on a GPU; without one it is refused unless DEVICE=cpu).
PROFILE ?= smoke
DEVICE ?= auto
SEED ?= 0
JOBS ?= auto
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
RESULTS ?= $(if $(filter smoke,$(PROFILE)),_build/results,results)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterLab opens notebooks/*.py (jupytext py:percent sources) as notebooks on a double click: jupytext's default
# viewer for Python files, put where the venv's `jupyter lab` reads its settings (<prefix>/etc/jupyter/labconfig)
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json

.PHONY: book execute golden site test venv clean-site results-system

venv: $(STAMP) $(LABCONFIG)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

$(LABCONFIG): tools/jupyter/labconfig/default_setting_overrides.json
	mkdir -p $(dir $@)
	cp $< $@

book: $(STAMP) $(LABCONFIG)
	$(PY) -m mfbook.run_book execute --profile "$(PROFILE)" --device "$(DEVICE)" --seed "$(SEED)" --jobs "$(JOBS)" \
		--results "$(RESULTS)"
	$(MAKE) --no-print-directory site

execute: $(STAMP) $(LABCONFIG)
	$(PY) -m mfbook.run_book execute --profile "$(PROFILE)" --device "$(DEVICE)" --seed "$(SEED)" --jobs "$(JOBS)" \
		--results "$(RESULTS)"

# Regenerate the committed golden copy results/smoke on purpose (then review `git diff results/smoke` and commit it):
# its provenance records this machine's numerics fingerprint, and tests/test_results.py compares a fresh `make book`
# exactly against it where the fingerprints match.
golden: $(STAMP)
	$(PY) -m mfbook.run_book execute --profile smoke --device cpu --seed 0 --jobs "$(JOBS)" --results results

# The site shows each chapter's full results where they exist, else the freshest smoke ones. SITE_RESULTS=DIR shows
# the results of one run folder instead (DIR/<profile>/<chapter>/), e.g. your own smoke run while results/full exists:
#   make site SITE_RESULTS=_build/results        (RESULTS=DIR given on the command line does the same)
# SITE_PROFILES="smoke" shows only that profile (default: full where executed, else smoke).
SITE_RESULTS ?= $(if $(filter command line,$(origin RESULTS)),$(RESULTS))
SITE_PROFILES ?=
site: $(STAMP)
	$(PY) -m mfbook.run_book site $(if $(SITE_RESULTS),--results "$(SITE_RESULTS)") $(if $(SITE_PROFILES),--profile $(SITE_PROFILES))
	rm -rf _build/html _build/.doctrees
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --quiet

test: $(STAMP) $(LABCONFIG)
	$(PY) -m pytest

clean-site:
	rm -rf _build book/_site

# On a GPU machine whose own python already has torch with CUDA: execute the book and the benchmarks there without a
# venv (tools/gpu_book.sh; WHEELS=DIR installs papermill & co. from wheels on an offline machine), then bring
# results/$(PROFILE) back and run `make site` where the site toolchain is installed.
WHEELS ?=
results-system:
	bash tools/gpu_book.sh --profile "$(PROFILE)" $(if $(WHEELS),--wheels "$(WHEELS)")
