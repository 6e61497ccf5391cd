# Both targets do all the setup on a fresh machine: a .venv with the pinned CPU torch first
# (a plain `torch` requirement would pull a multi-GB CUDA build), then lobra itself.
VENV   := .venv
PY     := $(VENV)/bin/python
LOBRA  := $(VENV)/bin/lobra
STAMP  := $(VENV)/.installed-stamp
TORCH  := torch==2.13.0

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(LOBRA) demo --out out

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) out
