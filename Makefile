# Two commands do all the set-up: `make chat` and `make test` (see README.md).
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Nothing but packages is ever downloaded: models come from pip packages that ship their weights.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: chat test eval bench-scale bench-load index install install-dev clean chromium

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is needed: set PY=/path/to/python3.11"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,llm]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

index: install
	$(BIN)/arolwg index

chat: install
	$(BIN)/arolwg chat

eval: install-dev
	$(BIN)/arolwg eval

# The scale benchmark (eval/scale.py): `make bench-scale SCALE=2,100 QUESTIONS=20` for a quick run.
SCALE ?= 2,100,500,1000
bench-scale: install-dev
	$(BIN)/arolwg eval --scale $(SCALE) $(if $(QUESTIONS),--scale-questions $(QUESTIONS))

# The load benchmark (eval/load.py): SESSIONS chat sessions at once against `arolwg chat` on 127.0.0.1.
SESSIONS ?= 20
bench-load: install-dev
	$(BIN)/arolwg eval --load $(SESSIONS)

# The browser tests drive Debian's Chromium (/usr/bin/chromium). When it is missing, `make test`
# installs it with chromium-driver if it can (root, with apt-get), or says in one line what to run.
CHROMIUM ?= /usr/bin/chromium
APT_GET ?= apt-get
chromium:
	@command -v $(CHROMIUM) >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v $(APT_GET) >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium and chromium-driver for the browser tests (apt-get) ..."; \
	  { DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "Installing chromium failed: run 'apt-get install chromium chromium-driver' as root; the browser tests fail without it."; \
	else \
	  echo "The browser tests need Chromium: run 'sudo apt-get install chromium chromium-driver' (or make test as root, which installs it)."; \
	fi

test: install-dev chromium
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
