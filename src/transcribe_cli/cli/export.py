"""``transcribe export RUN --onnx``: a trained checkpoint as a standalone model file.

``RUN`` is a training run folder (``RUN/best.pt``, else ``RUN/last.pt``; ``--checkpoint last``
takes ``RUN/last.pt``) or a checkpoint file. The ONNX file goes to ``RUN/model.onnx`` (or
beside the checkpoint file, same name with ``.onnx``) unless ``-o`` says otherwise, and runs
with ``transcribe --model FILE.onnx song.wav`` (onnxruntime, no training state).
``--with-frontend`` puts the frontend in the graph too (format 2: audio in), so that file runs
with onnxruntime and numpy only, without torch.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from transcribe_cli.cli.console import get_state
from transcribe_cli.errors import TranscribeError

FORMATS = ("onnx",)
DEFAULT_NAME = "model.onnx"


class Which(str, Enum):
    best = "best"
    last = "last"


def find_checkpoint(run: Path, which: Which | None) -> Path:
    """The checkpoint ``RUN`` names (see the module docstring). Raises :class:`TranscribeError`."""
    if run.is_file():
        if which is not None:
            raise TranscribeError(f"--checkpoint applies to a run folder, and {run} is a file",
                                  "drop --checkpoint or pass the run folder")
        return run
    if not run.is_dir():
        raise TranscribeError(f"run folder or checkpoint not found: {run}")
    names = ["last.pt"] if which is Which.last else ["best.pt", "last.pt"]
    for name in names:
        if (run / name).is_file():
            return run / name
    raise TranscribeError(f"no checkpoint in {run} (looked for {' and '.join(names)})",
                          f"train one with: transcribe train --model NAME --out {run}")


def default_output(run: Path, checkpoint: Path) -> Path:
    return run / DEFAULT_NAME if run.is_dir() else checkpoint.with_suffix(".onnx")


def export(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A training run folder (its best.pt) or a checkpoint .pt file.",
                                        show_default=False)],
    onnx: Annotated[bool, typer.Option("--onnx", help="Export to ONNX (run with onnxruntime).")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Where to write (default: RUN/model.onnx, or beside the .pt file).")] = None,
    checkpoint: Annotated[Optional[Which], typer.Option(
        "--checkpoint", help="Which checkpoint of a run folder: best (default; last.pt if there is no "
                             "best.pt) or last.", show_default=False)] = None,
    opset: Annotated[int, typer.Option("--opset", min=7, help="ONNX opset version.")] = 17,
    with_frontend: Annotated[bool, typer.Option(
        "--with-frontend", help="Put the frontend in the graph too (audio in, activations out): the file then "
        "runs on onnxruntime without torch (--runtime onnx).")] = False,
    check_audio: Annotated[Optional[Path], typer.Option(
        "--check-audio", help="With --with-frontend: also check onnxruntime against torch on this recording.",
        show_default=False)] = None,
) -> None:
    """Export a trained model for deployment: [bold]transcribe export runs/NAME --onnx[/].

    The ONNX file holds the network (features → activations) and the metadata inference
    needs; [bold]transcribe --model runs/NAME/model.onnx song.wav[/] runs it with onnxruntime.
    The export is checked against torch before it is written.
    """
    from transcribe_cli.cli.models import human_size
    from transcribe_cli.onnx_export import export_and_check
    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    if not onnx:
        raise TranscribeError("say which format to export to", f"formats: {', '.join('--' + f for f in FORMATS)}")
    source = find_checkpoint(run, checkpoint)
    target = output if output is not None else default_output(run, source)
    if target.is_dir():
        target = target / DEFAULT_NAME
    result = export_and_check(source, target, registry=get_registry(state.plugins_dirs), opset=opset,
                              with_frontend=with_frontend, check_audio=check_audio)
    if not state.quiet:
        state.out.print(f"{result.path}: {human_size(result.size)}, model {result.model!r} from {source} "
                  f"(onnxruntime vs torch: max abs difference {result.max_abs_diff:.1e})",
                  soft_wrap=True, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
