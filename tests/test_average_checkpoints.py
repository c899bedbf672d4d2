"""``scripts/average_checkpoints.py``: weight averages of checkpoints of one architecture."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from transcribe_cli.models.neural import build_network, load_checkpoint, network_meta, save_weights
from transcribe_cli.registry import get_registry

SCRIPT = ROOT / "scripts" / "average_checkpoints.py"
SMALL = {"channels": 8, "front_channels": 2, "dilations": (1, 2)}


def _checkpoint(path, seed, architecture=SMALL, **meta):
    spec = get_registry().model("piano")
    torch.manual_seed(seed)
    net = build_network(spec, architecture)
    for module in net.modules():  # distinct batch-norm statistics, so they are averaged too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
    return save_weights(path, {"meta": network_meta(spec, architecture, **meta), "state_dict": net.state_dict(),
                               "optimizer": {"step": 1}})


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_the_average_is_the_weighted_mean_of_every_float_tensor(tmp_path):
    a = _checkpoint(tmp_path / "a.pt", 0, decoder_options={"onset_threshold": 0.3}, validation={"onset_f1": 0.9})
    b = _checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "soup.pt"
    result = _run(out, a, b, "--weights", "3,1")
    assert result.returncode == 0, result.stderr
    soup, first, second = (load_checkpoint(p) for p in (out, a, b))
    for key, value in soup["state_dict"].items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * first["state_dict"][key] + 0.25 * second["state_dict"][key])
        else:
            assert torch.equal(value, first["state_dict"][key])
    assert soup["meta"]["decoder_options"] == {"onset_threshold": 0.3} and "validation" not in soup["meta"]
    assert [entry["weight"] for entry in soup["meta"]["averaged_from"]] == [3.0, 1.0]
    assert "optimizer" not in soup
    build_network(get_registry().model("piano"), soup["meta"]["architecture"]).load_state_dict(soup["state_dict"])


@pytest.mark.parametrize("other, message", [({"channels": 12, "front_channels": 2, "dilations": (1, 2)},
                                             "not the same model and architecture"), (None, "one non-negative weight")])
def test_other_architectures_and_bad_weights_are_refused(tmp_path, other, message):
    a = _checkpoint(tmp_path / "a.pt", 0)
    b = _checkpoint(tmp_path / "b.pt", 1, architecture=other or SMALL)
    result = _run(tmp_path / "soup.pt", a, b, *([] if other else ["--weights", "1"]))
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "soup.pt").exists()
