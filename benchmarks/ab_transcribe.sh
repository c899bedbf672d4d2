#!/usr/bin/env bash
# Interleaved whole-command A/B of two source trees (old, new, old, new, ...):
#   git worktree add /tmp/ab_old <commit>
#   bash benchmarks/ab_transcribe.sh /tmp/ab_old/src src N FILE [transcribe options...]
# Prints "old|new WALL s USER u PEAK_RSS KB" per run (GNU time) and leaves the two outputs in
# /tmp/ab_old.mid and /tmp/ab_new.mid for `cmp`. Read medians of interleaved pairs, not one run.
set -euo pipefail
OLD=$1; NEW=$2; N=$3; FILE=$4; shift 4
for _ in $(seq 1 "$N"); do
  for side in old new; do
    if [ "$side" = old ]; then SRC=$OLD; else SRC=$NEW; fi
    /usr/bin/time -f "$side %e s %U u %M KB" env PYTHONPATH="$SRC" python -m transcribe_cli "$FILE" \
      -o "/tmp/ab_$side.mid" -q "$@" 2>&1 | tail -1
  done
done
