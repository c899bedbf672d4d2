#!/usr/bin/env python3
"""Learn the piano templates of the ``nmf`` model and tune its decoder.

    python scripts/learn_nmf_templates.py [--out src/transcribe_cli/data/nmf_piano_cqt.npz]

Steps (everything runs through the project's own code: FluidSynth rendering, ``load_audio``,
the pipeline's peak normalisation, the registered ``cqt`` frontend, the windowed inference
and the registered decoders):

1. **Isolated notes.** A generated MIDI file plays every key A0..C8 at several velocities
   (1 s each, 0.5 s apart). It is rendered with each piano of :data:`PIANOS` (two
   SoundFonts). Its labels are exact: one key sounds at a time.
2. **Templates.** For each piano and each phase of a note — *attack* (its first
   ``--attack-frames`` frames) and *sustain* (the rest) — one template per key, learned by
   β-NMF with the gains ``H`` confined to the label support (``H`` starts on the piano roll
   and multiplicative updates keep its zeros at zero, so only the gains and ``W`` are
   learned), or with ``H`` kept exactly binary (``--binary``). Optionally POP909 training
   pieces are added (``--pieces N``), each frame supporting the templates of its sounding
   keys. ``W`` is ``[352, groups · 88 + noise]``, column ``g · 88 + k`` = group ``g`` of key
   ``k``, followed by ``--noise-templates`` fixed broadband templates (Gaussian bumps along
   the CQT bins, ``--noise-width`` bins wide, evenly spaced): they absorb hammer noise and
   other non-harmonic energy that would otherwise leak into the keys; their gains are
   discarded.
3. **Reference level.** The activation scale ``reference`` is the 99th percentile of the
   key gains on the sounding frames of ``--calibration-pieces`` POP909 *train* pieces
   (rendered, peak-normalised).
4. **Tuning.** The model's ``onset_suppression`` and the ``onset-peaks`` thresholds are
   chosen on ``--validation-pieces`` POP909 *valid* pieces (first ``--validation-seconds``
   of each), rendered with the two template pianos and with two pianos the templates never
   saw (:data:`UNSEEN_PIANOS`), maximising the mean of onset F1 and frame F1 (mir_eval, see
   :mod:`transcribe_cli.evaluation.metrics`). The ``frame-threshold`` decoder is tuned too, for
   comparison (kept in the metadata).
5. The ``.npz`` holds ``W`` and ``meta`` (JSON): model name, format, frontend and its
   settings, model settings, tuned decoder options, every input file with its sha256,
   validation scores, date and script version.

Data split: POP909 pieces are assigned to train / valid / test by a deterministic hash of
their id (:func:`piece_split`); the test pieces are never read here.

Helpers shared with ``scripts/measure_nmf.py`` and ``scripts/render_example.py`` live in
this file (import it with the ``scripts`` folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

SCRIPT_VERSION = 1
DATA = ROOT.parent / "shared" / "data"
POP909 = DATA / "midi" / "pop909"
REAL = DATA / "real"
DEFAULT_OUT = ROOT / "src" / "transcribe_cli" / "data" / "nmf_piano_cqt.npz"

#: (name, SoundFont file, General-MIDI program): the pianos rendered for learning/evaluation.
PIANOS: tuple[tuple[str, str, int], ...] = (
    ("musescore-grand", "MuseScore_General_Full.sf2", 0),  # preset "Grand Piano", bank 0
    ("fluidr3-yamaha-grand", "FluidR3_GM.sf2", 0),  # preset "Yamaha Grand Piano", bank 0
)
#: Pianos the templates never saw, added to validation so that tuning rewards robustness
#: to timbre (GM program 1, "Bright Acoustic Piano", of the same SoundFonts).
UNSEEN_PIANOS: tuple[tuple[str, str, int], ...] = (
    ("musescore-bright-grand", "MuseScore_General_Full.sf2", 1),  # preset "Bright Grand Piano"
    ("fluidr3-bright-yamaha", "FluidR3_GM.sf2", 1),  # preset "Bright Yamaha Grand"
)
RENDER_GAIN = 0.8
SAMPLE_RATE = 16000
PHASES = ("attack", "sustain")
SCALE_VELOCITIES = (40, 70, 100, 120)
SCALE_NOTE_S, SCALE_GAP_S = 1.0, 0.5

# ----------------------------------------------------------------------------- data split


def piece_split(piece_id: str) -> str:
    """``train`` / ``valid`` / ``test`` for a piece id such as ``pop909/001``:
    ``sha256(id) mod 100`` below 80 → train, below 90 → valid, else test."""
    bucket = int(hashlib.sha256(piece_id.encode()).hexdigest(), 16) % 100
    return "train" if bucket < 80 else "valid" if bucket < 90 else "test"


def pop909_pieces(split: str) -> list[str]:
    """POP909 piece ids (``pop909/001`` …) of one split, in numeric order."""
    ids = [f"pop909/{path.stem}" for path in sorted(POP909.glob("*.mid"))]
    return [piece for piece in ids if piece_split(piece) == split]


def piece_midi(piece_id: str) -> Path:
    corpus, _, number = piece_id.partition("/")
    if corpus != "pop909":
        raise ValueError(f"unknown corpus in {piece_id!r}")
    return POP909 / f"{number}.mid"


def file_sha256(path: Path) -> str:
    from transcribe_cli.weights.hub import file_digest

    return file_digest(path)


# ------------------------------------------------------------------------ audio → features


@dataclass
class Example:
    """One rendered or recorded excerpt: peak-normalised audio, linear CQT ``V [T, bins]``
    (numpy float32) and reference notes."""

    name: str
    audio: np.ndarray
    V: Any
    notes: list


def build_frontend():
    """The registered ``cqt`` frontend in numpy (the ``numpy`` runtime's, equal to the torch
    module's to float32 rounding)."""
    from transcribe_cli.registry import get_registry

    return get_registry().frontend("cqt").numpy_factory()


def analyse_audio(name: str, audio: np.ndarray, notes: Sequence, cqt) -> Example:
    """Peak-normalise ``audio`` like the pipeline and compute its linear CQT magnitude."""
    from transcribe_cli.frontends.arrays import linear
    from transcribe_cli.inference import normalize_audio

    audio = normalize_audio(np.asarray(audio, dtype=np.float32), "peak")
    V = linear(cqt(audio[None]), cqt.log_gain)[0]
    return Example(name, audio, V, list(notes))


def clip_notes(notes: Sequence, seconds: float, start: float = 0.0) -> list:
    """Notes starting in ``[start, start + seconds)``, shifted by ``-start`` and cut at the end."""
    from transcribe_cli.notes import Note

    end = start + seconds
    kept = []
    for n in notes:
        if start <= n.onset < end and min(n.offset, end) > n.onset:
            kept.append(Note(n.onset - start, min(n.offset, end) - start, n.pitch, n.velocity))
    return kept


def render_example(
    midi: Path, piano: tuple[str, str, int], cqt, *, seconds: float | None = None, name: str | None = None
) -> Example:
    """Render ``midi`` with one of :data:`PIANOS`, load it as the pipeline does and analyse
    it; ``seconds`` keeps only the start (audio and notes)."""
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.io.midi import read_midi
    from transcribe_cli.rendering import render

    piano_name, soundfont, program = piano
    wav = render(midi, sample_rate=SAMPLE_RATE, soundfont=soundfont, program=program, gain=RENDER_GAIN)
    audio = load_audio(wav, SAMPLE_RATE)
    notes = read_midi(midi, sustain_pedal=True)
    if seconds is not None:
        audio = audio[: int(seconds * SAMPLE_RATE)]
        notes = clip_notes(notes, seconds)
    return analyse_audio(name or f"{midi.stem}@{piano_name}", audio, notes, cqt)


def validation_examples(pieces: Sequence[str], cqt, seconds: float) -> list[Example]:
    """The first ``seconds`` of each of ``pieces`` rendered with every piano of :data:`PIANOS`
    and :data:`UNSEEN_PIANOS` (the tuning set; also ``benchmarks/bench_nmf_settings.py``'s)."""
    return [render_example(piece_midi(piece), piano, cqt, seconds=seconds)
            for piece in pieces for piano in PIANOS + UNSEEN_PIANOS]


def model_activations(model, example: Example, cqt) -> dict[str, np.ndarray]:
    """Activations of ``model`` on ``example.audio`` through the pipeline's windowed inference."""
    from transcribe_cli.inference import DEFAULT_WINDOW_SECONDS, ArrayModel, compute_activations

    return compute_activations(
        example.audio,
        None,
        ArrayModel(cqt, model),
        context_frames=1,
        window_frames=round(DEFAULT_WINDOW_SECONDS * cqt.frame_rate),
        batch_size=2,
        device="cpu",
    )


def decode(decoder: str, acts: dict[str, np.ndarray], frame_rate: float, **options: Any) -> list:
    """Notes from activations with a registered decoder."""
    from transcribe_cli.registry import get_registry

    return get_registry().decoder(decoder).factory()(acts, frame_rate, **options)


def score(ref: Sequence, est: Sequence) -> dict[str, float]:
    """Note and frame metrics (onset F1 at 50 ms, frame F1 at 10 ms, …)."""
    from transcribe_cli.evaluation.metrics import evaluate_notes

    return dict(evaluate_notes(ref, est))


# ------------------------------------------------------------------------- learning


def write_scale_midi(path: Path) -> list:
    """Write the isolated-note MIDI (every key at :data:`SCALE_VELOCITIES`); returns its notes."""
    from transcribe_cli.io.midi import write_midi
    from transcribe_cli.notes import Note

    notes, t = [], 0.25
    for velocity in SCALE_VELOCITIES:
        for pitch in range(21, 109):
            notes.append(Note(round(t, 4), round(t + SCALE_NOTE_S, 4), pitch, velocity))
            t += SCALE_NOTE_S + SCALE_GAP_S
    write_midi(notes, path)
    return notes


def group_support(example: Example, frame_rate: float, attack_frames: int, group_offset: int, n_groups: int):
    """Boolean support ``[T, n_groups · 88]``: the attack and sustain templates of this
    example's piano (groups ``group_offset`` and ``group_offset + 1``) where keys sound."""
    from transcribe_cli.labels import notes_to_onsets, notes_to_roll

    n_frames = example.V.shape[0]
    roll = notes_to_roll(example.notes, frame_rate, n_frames)
    attack = notes_to_onsets(example.notes, frame_rate, n_frames, width=attack_frames) & roll
    support = np.zeros((n_frames, n_groups * 88), dtype=bool)
    support[:, group_offset * 88 : (group_offset + 1) * 88] = attack
    support[:, (group_offset + 1) * 88 : (group_offset + 2) * 88] = roll & ~attack
    return support


def learn_dictionary(V, support, *, beta: float, n_iter: int, binary: bool, log=print):
    """β-NMF ``V ≈ H Wᵀ`` with ``H`` confined to ``support`` (``[T, K]`` bool).

    ``W`` starts at the support-weighted mean spectrum; ``H`` at the roll, scaled to each
    frame's magnitude. With ``binary`` ``H`` stays 0/1 and only ``W`` is learned. Returns
    ``W`` ``[F, K]`` with L1-normalised columns.
    """
    from transcribe_cli.models.nmf import beta_divergence, update_h, update_w

    S = support.astype(V.dtype)
    keep = S.sum(1) > 0
    V, S = V[keep], S[keep]
    counts = S.sum(0)
    if bool((counts == 0).any()):
        missing = np.flatnonzero(counts == 0).tolist()
        raise SystemExit(f"templates without any training frame: {missing[:10]}…")
    floor = 1e-4 * float(V.mean())
    W = (V.T @ S) / counts + floor
    W = W / W.sum(0, keepdims=True)
    H = S.copy() if binary else S * V.sum(1, keepdims=True) / S.sum(1, keepdims=True)
    for i in range(n_iter):
        if not binary:
            H = update_h(V, W, H, beta)
        W = update_w(V, W, H, beta)
        norms = W.sum(0, keepdims=True)
        W = W / norms
        if not binary:
            H = H * norms
        if not binary and (i % 10 == 0 or i == n_iter - 1):
            fit = beta_divergence(V, H @ W.T, beta) / V.size
            log(f"  template update {i + 1}/{n_iter}: divergence per bin {fit:.5f}")
    return W


def noise_templates(n_bins: int, count: int, width: float) -> np.ndarray:
    """``[n_bins, count]`` L1-normalised Gaussian bumps along the bins, evenly spaced."""
    if count == 0:
        return np.zeros((n_bins, 0), dtype=np.float32)
    centres = np.linspace(0, n_bins - 1, count)
    bins = np.arange(n_bins)[:, None]
    bumps = np.exp(-0.5 * ((bins - centres) / width) ** 2)
    return (bumps / bumps.sum(axis=0)).astype(np.float32)


def key_gains(model, example: Example):
    """Key gains ``G [T, 88]`` of ``model`` on one example (frame-wise, no windows needed)."""
    return model.key_gains(model.gains(example.V))


# --------------------------------------------------------------------------- tuning


def tune(
    examples: Sequence[Example],
    acts: Sequence[dict[str, np.ndarray]],
    frame_rate: float,
    decoder: str,
    grid: dict[str, Sequence[Any]],
    fixed: dict[str, Any],
    log=print,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Grid search: the options maximising mean(onset F1, frame F1) over the examples."""
    best: tuple[float, dict[str, Any], dict[str, float]] | None = None
    for values in itertools.product(*grid.values()):
        options = {**fixed, **dict(zip(grid, values))}
        scores = [score(ex.notes, decode(decoder, a, frame_rate, **options)) for ex, a in zip(examples, acts)]
        mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
        objective = (mean["onset_f1"] + mean["frame_f1"]) / 2
        log(f"  {decoder} {dict(zip(grid, values))}: onset F1 {mean['onset_f1']:.3f} frame F1 {mean['frame_f1']:.3f}")
        if best is None or objective > best[0]:
            best = (objective, options, mean)
    assert best is not None
    return best[1], best[2]


# ----------------------------------------------------------------------------- main


def describe_input(path: Path, role: str) -> dict[str, str]:
    """A data file as the metadata names it: path under the data folder, sha256, role."""
    return {"file": str(path.relative_to(DATA)), "sha256": file_sha256(path), "role": role}


def learn_templates(args: argparse.Namespace, cqt, n_groups: int, train_pieces: Sequence[str], log):
    """Steps 1-2: ``W`` ``[bins, n_groups · 88 + noise]`` and the ``training`` metadata."""
    from transcribe_cli.rendering import resolve_soundfont

    frame_rate = cqt.frame_rate
    with tempfile.TemporaryDirectory() as tmp:
        scale_path = Path(tmp) / "isolated_notes.mid"
        write_scale_midi(scale_path)
        scale_sha = file_sha256(scale_path)
        Vs, supports = [], []
        learn_pieces = train_pieces[: args.pieces]
        for index, piano in enumerate(PIANOS):
            example = render_example(scale_path, piano, cqt, name=f"isolated@{piano[0]}")
            Vs.append(example.V)
            supports.append(group_support(example, frame_rate, args.attack_frames, 2 * index, n_groups))
            for piece in learn_pieces:
                example = render_example(piece_midi(piece), piano, cqt)
                Vs.append(example.V[::2])  # every other frame: half the memory, same statistics
                supports.append(group_support(example, frame_rate, args.attack_frames, 2 * index, n_groups)[::2])
            log(f"rendered and analysed the training audio of {piano[0]}")
    V = np.concatenate(Vs)
    support = np.concatenate(supports)
    log(f"learning {support.shape[1]} templates from {V.shape[0]} frames (beta={args.beta}, binary={args.binary})")
    W = learn_dictionary(V, support, beta=args.beta, n_iter=args.learn_iter, binary=args.binary, log=log)
    W = np.concatenate([W, noise_templates(W.shape[0], args.noise_templates, args.noise_width)], axis=1)
    training = {
        "isolated_notes": {
            "generated_by": "write_scale_midi",
            "sha256": scale_sha,
            "velocities": list(SCALE_VELOCITIES),
            "note_seconds": SCALE_NOTE_S,
            "gap_seconds": SCALE_GAP_S,
        },
        "pieces": [describe_input(piece_midi(p), "templates") for p in learn_pieces],
        "soundfonts": [
            {"piano": p[0], "file": p[1], "program": p[2], "sha256": file_sha256(resolve_soundfont(p[1]))}
            for p in PIANOS
        ],
        "render": {"sample_rate": SAMPLE_RATE, "gain": RENDER_GAIN, "reverb": False, "chorus": False},
        "beta": args.beta,
        "learn_iter": args.learn_iter,
        "attack_frames": args.attack_frames,
        "binary_h": args.binary,
        "split": "sha256('pop909/<number>') mod 100: <80 train, <90 valid, else test",
        "licence": "POP909 MIDI: MIT; isolated notes: generated",
    }
    return W, training


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--beta", type=float, default=0.5, help="β of the divergence (learning and inference)")
    parser.add_argument("--n-iter", type=int, default=50, help="updates of H at inference")
    parser.add_argument("--sparsity", type=float, default=0.0, help="L1 penalty on H at inference")
    parser.add_argument("--onset-suppression", type=float, nargs="+", default=[0.0, 0.5, 1.0],
                        help="candidate onset_suppression values (the best on validation is kept)")
    parser.add_argument("--learn-iter", type=int, default=30, help="template learning updates")
    parser.add_argument("--attack-frames", type=int, default=4, help="frames of a note given to its attack template")
    parser.add_argument("--binary", action="store_true", help="keep H binary while learning W")
    parser.add_argument("--pieces", type=int, default=0, help="POP909 train pieces added to template learning")
    parser.add_argument("--noise-templates", type=int, default=15, help="fixed broadband templates")
    parser.add_argument("--noise-width", type=float, default=12.0, help="their width (std) in bins")
    parser.add_argument("--calibration-pieces", type=int, default=2)
    parser.add_argument("--validation-pieces", type=int, default=2)
    parser.add_argument("--validation-seconds", type=float, default=90.0)
    parser.add_argument("--range-db", type=float, default=100.0)
    parser.add_argument("--velocity-range-db", type=float, default=40.0)
    parser.add_argument("--bin-pool", type=int, default=1, help="adjacent CQT bins summed at inference")
    parser.add_argument("--relaxation", type=float, default=1.0,
                        help="multiplies the inference updates' exponent (1: the monotone updates)")
    parser.add_argument("--prune-after", type=int, default=0, help="updates before a block drops unused templates")
    parser.add_argument("--prune-level", type=float, default=0.0,
                        help="gain / frame magnitude below which a block drops a template (0 = never)")
    parser.add_argument("--templates", type=Path, default=None,
                        help="reuse the templates of this file (skip steps 1-2): retune its inference settings")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from transcribe_cli.frontends import CQT_SETTINGS, DEFAULT_LOG_GAIN
    from transcribe_cli.labels import notes_to_roll
    from transcribe_cli.models.nmf import TEMPLATE_FORMAT, NMFTranscriber, load_templates

    threadpool_limits(args.threads, user_api="blas")  # template learning: whole-matrix GEMMs
    started = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {message}", flush=True)

    cqt = build_frontend()
    frame_rate = cqt.frame_rate
    n_groups = len(PIANOS) * len(PHASES)
    groups = [{"piano": p[0], "soundfont": p[1], "program": p[2], "phase": ph} for p in PIANOS for ph in PHASES]

    train_pieces = pop909_pieces("train")
    if args.templates is not None:  # steps 1-2 done before: their templates and what they were learned from
        W, learned = load_templates(args.templates)
        if learned.get("model") != "nmf" or W.shape[1] != n_groups * 88 + learned["noise_templates"]["count"]:
            raise SystemExit(f"{args.templates}: not templates of this script's layout")
        training, noise = dict(learned["training"]), learned["noise_templates"]
        training["templates_from"] = {"created": learned.get("created"), "sha256": file_sha256(args.templates)}
        log(f"templates {tuple(W.shape)} from {args.templates} (sha256 {training['templates_from']['sha256']})")
    else:
        W, training = learn_templates(args, cqt, n_groups, train_pieces, log)
        noise = {"count": args.noise_templates, "width_bins": args.noise_width}

    settings: dict[str, Any] = {
        "n_groups": n_groups,
        "log_gain": float(DEFAULT_LOG_GAIN),
        "n_iter": args.n_iter,
        "beta": args.beta,
        "sparsity": args.sparsity,
        "range_db": args.range_db,
        "velocity_range_db": args.velocity_range_db,
        "bin_pool": args.bin_pool,
        "prune_after": args.prune_after,
        "prune_level": args.prune_level,
        "relaxation": args.relaxation,
    }

    # 3. reference level from training pieces
    calibration = train_pieces[: args.calibration_pieces]
    probe = NMFTranscriber(W, reference=1.0, threads=args.threads, **settings)
    sounding = []
    for piece in calibration:
        for piano in PIANOS:
            example = render_example(piece_midi(piece), piano, cqt)
            G = key_gains(probe, example)
            roll = notes_to_roll(example.notes, frame_rate, G.shape[0])
            sounding.append(G[roll])
    settings["reference"] = float(np.percentile(np.concatenate(sounding), 99))
    log(f"reference gain (99th percentile on {len(calibration)} train pieces): {settings['reference']:.4g}")
    model = NMFTranscriber(W, threads=args.threads, **settings)

    # 4. tuning on validation pieces (template pianos and unseen pianos)
    validation = pop909_pieces("valid")[: args.validation_pieces]
    examples = validation_examples(validation, cqt, args.validation_seconds)
    log(f"validation: {len(examples)} excerpts of {args.validation_seconds:g} s")
    onset_peaks_grid = {"onset_threshold": (0.74, 0.77, 0.8, 0.83), "frame_threshold": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)}
    onset_peaks_fixed = {"peak_window": 2, "confirm_frames": 2, "min_note_length": 0.0, "refine_onsets": True}
    best: tuple[float, float, dict[str, Any], dict[str, float]] | None = None
    per_suppression = {}
    for suppression in args.onset_suppression:
        model.onset_suppression = suppression
        acts = [model_activations(model, example, cqt) for example in examples]
        options, scores = tune(examples, acts, frame_rate, "onset-peaks", onset_peaks_grid, onset_peaks_fixed, log)
        objective = (scores["onset_f1"] + scores["frame_f1"]) / 2
        per_suppression[str(suppression)] = {"options": options, "scores": scores}
        log(f"onset_suppression {suppression}: {options} → onset F1 {scores['onset_f1']:.4f}, "
            f"frame F1 {scores['frame_f1']:.4f}")
        if best is None or objective > best[0]:
            best = (objective, suppression, options, scores)
    assert best is not None
    _, settings["onset_suppression"], onset_peaks, onset_peaks_scores = best
    model.onset_suppression = settings["onset_suppression"]
    acts = [model_activations(model, example, cqt) for example in examples]
    frame_threshold, frame_threshold_scores = tune(
        examples,
        acts,
        frame_rate,
        "frame-threshold",
        {"threshold": (0.7, 0.8, 0.85), "median_frames": (1, 3)},
        {"gap_frames": 0, "min_duration": 0.05},
        log,
    )
    log(f"chosen: onset_suppression {settings['onset_suppression']}, onset-peaks {onset_peaks}: {onset_peaks_scores}")
    log(f"frame-threshold {frame_threshold}: {frame_threshold_scores}")

    meta = {
        "model": "nmf",
        "format": TEMPLATE_FORMAT,
        "frontend": {"name": "cqt", **dict(CQT_SETTINGS), "log_gain": float(DEFAULT_LOG_GAIN)},
        "settings": settings,
        "groups": groups,
        "noise_templates": noise,
        "decoder": "onset-peaks",
        "decoder_options": onset_peaks,
        "validation": {
            "pieces": validation,
            "pianos": [{"piano": p[0], "file": p[1], "program": p[2]} for p in PIANOS + UNSEEN_PIANOS],
            "seconds": args.validation_seconds,
            "onset_suppression": per_suppression,
            "onset-peaks": {"options": onset_peaks, "scores": onset_peaks_scores},
            "frame-threshold": {"options": frame_threshold, "scores": frame_threshold_scores},
        },
        "training": {**training, "calibration": [describe_input(piece_midi(p), "reference level") for p in calibration]},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "script": "scripts/learn_nmf_templates.py",
        "script_version": SCRIPT_VERSION,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(tmp_out, W=W.astype(np.float32), meta=np.array(json.dumps(meta, sort_keys=True)))
    os.replace(tmp_out, args.out)
    log(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {file_sha256(args.out)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
