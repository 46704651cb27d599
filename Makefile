# Two commands do all set-up: `make lab` and `make test`. A second run skips what is installed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST := $(BIN)/python -m pytest
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: lab demo test test-widgets7 test-browser-all unit notebooks browser system data bench report clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[lab,dev]'
	$(BIN)/pip install --quiet -c constraints.txt -e '.[course]'  # nbgrader (+2 small packages): tests/test_course.py
	@touch $(STAMP)

# The kernel-side code under ipywidgets 7.7.1 (what Colab ships): every notebook in smoke mode, in its
# own venv with the same pins but ipywidgets 7. Not part of `make test` (its time budget); .ci/run calls it.
W7       := .venv-w7
W7_STAMP := $(W7)/.installed-stamp
$(W7_STAMP): pyproject.toml constraints.txt
	@test -x $(W7)/bin/python || $(PYTHON) -m venv $(W7)
	grep -v -E '^(ipywidgets|widgetsnbextension|jupyterlab_widgets)==' constraints.txt > $(W7)/constraints.txt
	printf 'ipywidgets==7.7.1\nwidgetsnbextension==3.6.10\njupyterlab_widgets==1.1.11\nipython_genutils==0.2.0\nnotebook==7.6.5\n' >> $(W7)/constraints.txt
	$(W7)/bin/pip install --quiet -c $(W7)/constraints.txt -e '.[lab,dev]'
	@touch $(W7_STAMP)

test-widgets7: $(W7_STAMP)
	$(W7)/bin/python -c "import ipywidgets; assert ipywidgets.__version__ == '7.7.1', ipywidgets.__version__"
	LABKIT_MODE=smoke $(W7)/bin/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	  -q -p no:cacheprovider notebooks

# Debian packages: Chromium for the browser test, the original Fashion-MNIST for `labkit data build`.
system:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null; \
	  else \
	    echo "note: run 'sudo apt-get install chromium dataset-fashion-mnist' for the browser test and 'labkit data build'"; \
	  fi; \
	fi

lab: $(STAMP)
	$(BIN)/labkit lab

# Workshop mode: one notebook as a Voilà dashboard on 127.0.0.1 (code hidden, widgets live).
# make demo NB=07_pruning   (LABKIT_MODE=smoke make demo ... renders in seconds instead of minutes)
NB ?= 00_welcome
demo: $(STAMP)
	$(BIN)/labkit demo $(NB)

# Notebooks run one at a time: each kernel uses both cores (two kernels side by side with two
# threads each oversubscribe a 2-core machine and run slower than one after the other).
test: $(STAMP) system
	$(BIN)/nbstripout --verify notebooks/*.ipynb
	$(PYTEST) tests -m "not browser" -n 2 -q
	LABKIT_MODE=smoke $(PYTEST) --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	  -q -p no:cacheprovider notebooks
	$(PYTEST) tests -m "browser and not browser_all" -q

# Run All in the browser, and the static HTML export, of every other notebook (CI: .ci/run calls it after make test; ~17 min).
test-browser-all: $(STAMP) system
	$(PYTEST) tests -m browser_all -q

unit: $(STAMP)
	$(PYTEST) tests -m "not browser" -n 2 -q

notebooks: $(STAMP)
	LABKIT_MODE=smoke $(PYTEST) --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -q -p no:cacheprovider notebooks

browser: $(STAMP) system
	$(PYTEST) tests -m browser -q

data: $(STAMP) system
	$(BIN)/labkit data build

bench: $(STAMP)
	$(BIN)/labkit bench all

report: $(STAMP)
	$(BIN)/labkit report

clean:
	rm -rf $(VENV) $(W7) results test-artifacts
