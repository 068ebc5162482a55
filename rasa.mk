# Optional second brain: a real Rasa Open Source 3.6 server (Python 3.10, own venv).
# Included from the main Makefile. `make rasa` builds, trains and serves on port 5005.
PYTHON310 ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.10.13/bin/python
RASA_PORT ?= 5005
RASA_ENV = PYTHON310="$(PYTHON310)" RASA_PORT="$(RASA_PORT)"

.PHONY: rasa rasa-venv rasa-export rasa-train test-rasa

rasa-venv:
	$(RASA_ENV) scripts/rasa.sh venv

rasa-export:
	$(RASA_ENV) scripts/rasa.sh export

rasa-train:
	$(RASA_ENV) scripts/rasa.sh train

rasa:
	$(RASA_ENV) scripts/rasa.sh run

test-rasa:
	$(RASA_ENV) .venv/bin/python -m pytest -m rasa tests/test_rasa_brain.py
