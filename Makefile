# make demo: set up .venv from scratch and run the tutorial's MedicalBilling job on the embedded model.
# make test: set up .venv from scratch and run the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXTRA := the name must be chosen at random. Make it something you wouldn't normally choose.

.PHONY: install demo test lint bench clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	bash scripts/install-llama.sh $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'

# --rule auto: keep the orderings every example keeps (a claim is never above its charge)
demo: install
	$(VENV)/bin/simulacra generate examples/medical_billing.py:MedicalBilling -n 10 \
		--examples examples/medical_billing.jsonl --subject medical_billing --extra "$(EXTRA)" \
		--rule auto

# pytest exits 5 when it selects no test: that is a failure here, not a silent pass.
test: install
	$(VENV)/bin/ruff check src tests examples bench
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest selected no tests" >&2; exit 1; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check src tests bench examples

clean:
	rm -rf $(VENV) build *.egg-info
