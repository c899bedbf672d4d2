"""The adapter plugins' clean install, checked from a fresh virtual environment (`make test-fresh-install`).

    python scripts/check_fresh_install.py [--venv DIR] [--keep]

1. ``python -m venv`` (no ``--system-site-packages``) and, in it,
   ``pip install -c constraints.txt . ./plugins/transcribe-basic-pitch ./plugins/transcribe-transkun
   --report``: the install report must hold no ``tensorflow*``, no ``nvidia-*`` and no ``torchaudio``,
   and torch must be a ``+cpu`` build;
2. ``transcribe plugins --json`` lists both plugins with their versions and no error;
3. with an empty ``TRANSCRIBE_CACHE_DIR``, ``transcribe download basic-pitch transkun`` fetches the
   peers' wheels without their dependencies (``pip download --no-deps``: needs the package index,
   as the install does), then each adapter transcribes 2 s of ``examples/pop909_003.flac``
   (transkun with 4 s segments, a few seconds of CPU instead of minutes; ``--tempo none``) into a
   MIDI file with notes.

pip's own cache and the configured local wheels (the CPU torch) are used as they are. Each step
prints its time; a failed check is one ``error:`` line with a hint, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = {"basic-pitch": "plugins/transcribe-basic-pitch", "transkun": "plugins/transcribe-transkun"}
#: per adapter, the options of the short transcription
RUNS = {"basic-pitch": [], "transkun": ["-O", "segment_size=4", "-O", "segment_hop=2"]}
FORBIDDEN = ("tensorflow", "nvidia-", "torchaudio")


class CheckFailed(Exception):
    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def step(title: str):
    print(f"-- {title}", flush=True)
    return time.perf_counter()


def done(start: float) -> None:
    print(f"   {time.perf_counter() - start:.1f} s", flush=True)


def run(command: list[str], *, env: dict[str, str], capture: bool = False) -> str:
    done_ = subprocess.run(command, cwd=ROOT, env=env, text=True, check=False,
                           stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
    if done_.returncode != 0:
        lines = [line for line in (done_.stderr or "").splitlines() if line.strip()]
        raise CheckFailed(f"`{' '.join(command[:4])} ...` failed: {lines[-1] if lines else 'no message'}",
                          "run it by hand in the venv (--keep) to see the whole output")
    if done_.stderr and not capture:
        sys.stderr.write(done_.stderr)
    return done_.stdout or ""


def installed_from_report(report: dict) -> dict[str, str]:
    """``{name: version}`` of what ``pip install --report`` installed."""
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report.get("install", [])}


def check_report(installed: dict[str, str]) -> None:
    bad = sorted(name for name in installed if name.startswith(FORBIDDEN))
    if bad:
        raise CheckFailed(f"the install pulled {', '.join(bad)}",
                          "a plugin's dependencies must not include TensorFlow, torchaudio or CUDA wheels")
    torch = installed.get("torch")
    if torch is not None and "+cpu" not in torch:
        raise CheckFailed(f"torch {torch} is not the CPU build", "install with -c constraints.txt")


def check_plugins(listing: list[dict]) -> None:
    found = {entry["name"]: entry for entry in listing}
    for name in PLUGINS:
        entry = found.get(name)
        if entry is None or entry.get("error") or not entry.get("version"):
            raise CheckFailed(f"`transcribe plugins` does not list {name} with a version ({entry})",
                              f"check the transcribe_cli entry point in {PLUGINS[name]}/pyproject.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="where to create the venv (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the venv and the outputs")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fresh-install-"))
    venv = args.venv or work / "venv"
    # nothing of this checkout or of the calling environment's plugin settings leaks in
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "TRANSCRIBE_LOAD_PLUGINS", "TRANSCRIBE_PLUGINS_DIR")}
    env["TRANSCRIBE_CACHE_DIR"] = str(work / "cache")
    try:
        total = time.perf_counter()
        if venv.exists():
            shutil.rmtree(venv)
        started = step(f"python -m venv {venv}")
        run([sys.executable, "-m", "venv", str(venv)], env=env)
        done(started)
        python, transcribe = str(venv / "bin" / "python"), str(venv / "bin" / "transcribe")

        started = step("pip install -c constraints.txt . " + " ".join(f"./{p}" for p in PLUGINS.values()))
        report_path = work / "install-report.json"
        # --no-compile: byte-compiling torch and the rest took 557 s of the 702 s on a busy 2-core CPU
        run([python, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check", "-c", "constraints.txt",
             "--report", str(report_path), ".", *(f"./{p}" for p in PLUGINS.values())], env=env)
        done(started)
        installed = installed_from_report(json.loads(report_path.read_text()))
        check_report(installed)
        print(f"   {len(installed)} distributions; torch {installed.get('torch', '(already there)')}; "
              f"none of {', '.join(f'{f}*' for f in FORBIDDEN)}", flush=True)

        started = step("transcribe plugins --json")
        listing = json.loads(run([transcribe, "plugins", "--json"], env=env, capture=True))
        check_plugins(listing)
        print("   " + "; ".join(f"{e['name']} {e['version']}" for e in listing if e["name"] in PLUGINS), flush=True)
        done(started)

        started = step("transcribe download " + " ".join(PLUGINS) + " (the peers' wheels, into an empty cache)")
        run([transcribe, "download", *PLUGINS], env=env)
        done(started)

        clip = work / "clip.wav"
        run([python, "-c", "import soundfile, sys; a, r = soundfile.read(sys.argv[1]); "
             "soundfile.write(sys.argv[2], a[: 2 * r], r)", "examples/pop909_003.flac", str(clip)], env=env)
        for name, options in RUNS.items():
            started = step(f"transcribe clip.wav --model {name} {' '.join(options)} -o {name}.mid")
            out = work / f"{name}.mid"
            # --tempo none: librosa's beat tracker would first JIT-compile (numba) in the new venv, a minute
            # on a busy CPU that tests nothing about the install (the core suite tests tempo tracking)
            run([transcribe, str(clip), "--model", name, *options, "--tempo", "none", "--device", "cpu", "-q",
                 "-o", str(out)], env=env)
            notes = run([python, "-c", "import pretty_midi, sys; "
                         "print(sum(len(i.notes) for i in pretty_midi.PrettyMIDI(sys.argv[1]).instruments))",
                         str(out)], env=env, capture=True).strip()
            if not notes.isdigit() or int(notes) == 0:
                raise CheckFailed(f"{name} wrote no notes for 2 s of piano", "run the same command with -v")
            print(f"   {notes} notes", flush=True)
            done(started)
        print(f"fresh install checked in {time.perf_counter() - total:.0f} s", flush=True)
        return 0
    except CheckFailed as failure:
        print(f"error: {failure} (hint: {failure.hint})", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}" + (f" and {venv}" if args.venv else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
            if args.venv:
                shutil.rmtree(venv, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
