# Developer entry points. `make test` is the README's test command and what CI runs.
PYTHON ?= python3
# CI (2 cores, no GPU) skips slow and GPU-only tests by marker; `make test-all` runs them.
MARKERS ?= not slow and not gpu
JOBS ?= 2

.PHONY: install system-deps test test-plugins test-fresh-install test-all bench

install:
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[test,onnx,ray,train]'

# FluidSynth and piano SoundFonts render test audio; installed when we are root (CI),
# otherwise the rendering tests skip and say how to install them.
system-deps:
	@if ! command -v fluidsynth >/dev/null 2>&1 || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      fluidsynth fluid-soundfont-gm musescore-general-soundfont-lossless >/dev/null; \
	  else \
	    echo "note: FluidSynth/SoundFonts missing; rendering tests will skip" \
	         "(sudo apt-get install fluidsynth fluid-soundfont-gm musescore-general-soundfont-lossless)"; \
	  fi; \
	fi

test: system-deps install test-plugins test-fresh-install
	$(PYTHON) -m pytest -m "$(MARKERS)" -n $(JOBS)

# The adapter plugins (plugins/*/), installed into the same environment with the same pins;
# their dependencies hold no TensorFlow and no torchaudio (each README says why), and the
# peers' wheels come without theirs (transcribe_cli.peers). Each plugin's tests run on their own.
PLUGINS := plugins/transcribe-basic-pitch plugins/transcribe-transkun

test-plugins: system-deps install
	$(PYTHON) -m pip install --quiet -c constraints.txt $(addprefix ./,$(PLUGINS))
	@for plugin in $(PLUGINS); do \
	  $(PYTHON) -m pytest -m "$(MARKERS)" -p no:cacheprovider $$plugin/tests || exit 1; \
	done

# The plugins' clean install from a fresh venv (no TensorFlow, torchaudio or CUDA wheels; both
# listed; one short transcription each, the peers' wheels fetched into an empty cache): needs the
# package index, as any install does. 389 s on the busy 2-core CPU (load 7-8; pip 186 s, transkun
# 97 s); scripts/check_fresh_install.py says how.
test-fresh-install:
	$(PYTHON) scripts/check_fresh_install.py

test-all: system-deps install
	$(PYTHON) -m pytest -n $(JOBS)

bench: install
	$(PYTHON) benchmarks/bench_frontends.py
	$(PYTHON) benchmarks/bench_transcribe.py
