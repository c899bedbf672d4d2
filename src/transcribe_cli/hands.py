"""Splitting piano notes into left and right hand (``--split-hands``).

A Viterbi search over a moving *split point*: the notes are grouped into onset clusters
(notes starting within 30 ms), and for each cluster a split pitch ``s`` (MIDI 36..84) puts the
notes below ``s`` in the left hand and the others in the right. The path of split points
minimises, summed over clusters:

* a span cost: each hand's notes spanning more than :data:`MAX_SPAN` semitones (a tenth,
  what a hand reaches) cost 4 per extra semitone;
* a movement cost: 0.15 per semitone the split point moves between consecutive clusters
  (hands stay on their side, but follow the music);
* a centre cost: 0.02 per semitone away from middle C (60), which only decides when
  nothing else does (a single melody line is in the right hand above C4, the left below).

It is a heuristic, documented and deterministic; crossing hands are not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .notes import Note, sort_notes

__all__ = ["MAX_SPAN", "split_hands"]

MAX_SPAN = 16
_SPLITS = np.arange(36, 85)
_CLUSTER_SECONDS = 0.03


def split_hands(notes: Sequence[Note]) -> tuple[list[Note], list[Note]]:
    """``(left, right)``: the notes of each hand, each sorted."""
    ordered = sort_notes(notes)
    if not ordered:
        return [], []
    clusters: list[list[int]] = [[0]]
    for i in range(1, len(ordered)):
        if ordered[i].onset - ordered[clusters[-1][0]].onset <= _CLUSTER_SECONDS:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    local = np.array([_cluster_cost([ordered[i].pitch for i in c]) for c in clusters])  # [C, S]
    move = 0.15 * np.abs(_SPLITS[:, None] - _SPLITS[None, :])  # [from, to]
    total = local[0].copy()
    back = np.zeros((len(clusters), len(_SPLITS)), dtype=int)
    for c in range(1, len(clusters)):
        candidates = total[:, None] + move
        back[c] = np.argmin(candidates, axis=0)
        total = candidates[back[c], np.arange(len(_SPLITS))] + local[c]
    path = np.zeros(len(clusters), dtype=int)
    path[-1] = int(np.argmin(total))
    for c in range(len(clusters) - 1, 0, -1):
        path[c - 1] = back[c, path[c]]
    left: list[Note] = []
    right: list[Note] = []
    for cluster, state in zip(clusters, path, strict=True):
        split = _SPLITS[state]
        for i in cluster:
            (left if ordered[i].pitch < split else right).append(ordered[i])
    return left, right


def _cluster_cost(pitches: list[int]) -> np.ndarray:
    p = np.sort(np.asarray(pitches))
    cost = 0.02 * np.abs(_SPLITS - 60).astype(float)
    for k, split in enumerate(_SPLITS):
        low, high = p[p < split], p[p >= split]
        for hand in (low, high):
            if len(hand) > 1:
                cost[k] += 4.0 * max(0, int(hand[-1] - hand[0]) - MAX_SPAN)
            if len(hand) > 5:  # five fingers
                cost[k] += 4.0 * (len(hand) - 5)
    return cost
