# `make run` installs OneStack into .venv and starts it on ./onestack-data;
# `make test` installs the test extras and runs the test suite;
# `make panel-vendor` rebuilds the panel's vendored libraries with npm.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= onestack-data
PYTEST_ARGS ?=

.PHONY: run test install install-test lint clean panel-vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/onestack serve --data-dir $(DATA_DIR)

test: install-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check onestack tests bench
	$(BIN)/ruff format --check onestack tests bench

clean:
	rm -rf $(VENV) build *.egg-info

# The panel's front-end libraries, pinned in panel-src/package-lock.json.
# Only this target needs Node.js; its output is committed. The browser loads
# ES modules without an import map (an inline one would need 'unsafe-inline'
# in the CSP), so the hooks module's bare "preact" import becomes a path.
PANEL_VENDOR := onestack/admin/panel/vendor
PANEL_MODULES := panel-src/node_modules

panel-vendor:
	cd panel-src && npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(PANEL_VENDOR)
	mkdir -p $(PANEL_VENDOR)/licenses
	cp $(PANEL_MODULES)/preact/dist/preact.module.js $(PANEL_VENDOR)/preact.module.js
	sed 's|from"preact"|from"./preact.module.js"|' \
		$(PANEL_MODULES)/preact/hooks/dist/hooks.module.js > $(PANEL_VENDOR)/hooks.module.js
	cp $(PANEL_MODULES)/htm/dist/htm.module.js $(PANEL_VENDOR)/htm.module.js
	cp $(PANEL_MODULES)/uplot/dist/uPlot.esm.js $(PANEL_VENDOR)/uPlot.esm.js
	cp $(PANEL_MODULES)/uplot/dist/uPlot.min.css $(PANEL_VENDOR)/uPlot.min.css
	cp $(PANEL_MODULES)/dompurify/dist/purify.es.mjs $(PANEL_VENDOR)/purify.es.mjs
	cp $(PANEL_MODULES)/preact/LICENSE $(PANEL_VENDOR)/licenses/preact.LICENSE
	cp $(PANEL_MODULES)/htm/LICENSE $(PANEL_VENDOR)/licenses/htm.LICENSE
	cp $(PANEL_MODULES)/uplot/LICENSE $(PANEL_VENDOR)/licenses/uplot.LICENSE
	cp $(PANEL_MODULES)/dompurify/LICENSE $(PANEL_VENDOR)/licenses/dompurify.LICENSE
	cd panel-src && node -e 'const l=require("./package-lock.json").packages;for(const[k,v]of Object.entries(l))if(k)console.log(k.slice(13)+" "+v.version+" "+v.license)' \
		> ../$(PANEL_VENDOR)/licenses/VERSIONS
