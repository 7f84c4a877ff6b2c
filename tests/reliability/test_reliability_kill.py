"""SIGKILL at the worst moments: during validation, during a checkpoint write, during predict.

Each killed process is a real ``pixelseg`` run in a subprocess whose one function is wrapped to
kill the process at a chosen call (the package itself has no fault hooks). After the kill no
file under a final name is truncated, and the rerun (``--resume`` for training) ends with what
an uninterrupted run gives: bitwise-identical weights on the CPU, identical label images.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DETERMINISTIC_SETTINGS, single_thread_env
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.checkpoint import read_checkpoint

SETTINGS = DETERMINISTIC_SETTINGS

# Runs pixelseg's CLI with ``module.name`` (or ``module.Class.method``) wrapped: its ``call``-th
# call SIGKILLs the process —
# before the call, or (``inside``) once the wrapped function has written half of its file.
DRIVER = """
import importlib, os, signal, sys
module, name, call, inside = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
target = importlib.import_module(module)
*owners, name = name.split(".")
for owner in owners:  # a method: "Class.method"
    target = getattr(target, owner)
original = getattr(target, name)
calls = [0]
def wrapped(*args, **kwargs):
    calls[0] += 1
    if calls[0] == call:
        if inside:  # a checkpoint write cut short: half a file under the temporary name
            tensors, path = args[0], args[1]
            original(tensors, path, **kwargs)
            with open(path, "r+b") as handle:
                handle.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(target, name, wrapped)
exec(os.environ.get("DRIVER_SETUP", ""))
from pixelseg.cli import main
sys.exit(main(sys.argv[5:]))
"""


def _train_args(config: Path, out: Path, *extra: str) -> list[str]:
    args = ["train", str(config), "--out", str(out)]
    for setting in SETTINGS:
        args += ["--set", setting]
    return args + list(extra)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixelseg", *args],
        env=single_thread_env(),
        capture_output=True,
        text=True,
    )


def _killed(wrap: tuple[str, str, int, bool], args: list[str], setup: str = "") -> int:
    module, name, call, inside = wrap
    driver = [sys.executable, "-c", DRIVER, module, name, str(call), "1" if inside else "0"]
    env = {**single_thread_env(), "DRIVER_SETUP": setup}
    done = subprocess.run([*driver, *args], env=env, capture_output=True, text=True)
    return done.returncode


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def _no_truncated_checkpoint(run_dir: Path) -> None:
    for path in (run_dir / "checkpoints").glob("*.safetensors"):
        read_checkpoint(path)  # raises on a half-written file


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    root = tmp_path_factory.mktemp("kill")
    config = write_synthetic_semantic(root / "data", n_images=12, size=48, seed=1)
    done = _run(_train_args(config, root / "reference"))
    assert done.returncode == 0, done.stderr
    return config, _weights(root / "reference")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "wrap"),
    [
        # The second validation batch's metrics: inside a validation pass.
        ("validation", ("pixelseg.tasks.semantic.task", "SemanticTask.update_metrics", 2, False)),
        ("checkpoint write", ("pixelseg.engine.checkpoint", "save_file", 4, True)),
    ],
)
def test_a_run_killed_during_it_resumes_to_identical_weights(
    reference: tuple[Path, dict[str, torch.Tensor]],
    tmp_path: Path,
    where: str,
    wrap: tuple[str, str, int, bool],
) -> None:
    config, expected = reference
    run_dir = tmp_path / "killed"
    assert _killed(wrap, _train_args(config, run_dir)) == -9, f"not killed during {where}"
    _no_truncated_checkpoint(run_dir)
    resumed = _run(_train_args(config, run_dir, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    _no_truncated_checkpoint(run_dir)
    weights = _weights(run_dir)
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(value, weights[name]), f"{name} differs after a kill during {where}"


@pytest.mark.slow
def test_a_predict_killed_mid_folder_reruns_to_the_same_outputs(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, _ = trained
    folder = write_synthetic_semantic(tmp_path / "data", n_images=5, size=64, seed=4).parent
    images = str(folder / "images")
    whole = _run(["predict", str(run_dir), images, "--out", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    # save_png writes each image's overlay, then its label image: call 5 is the third overlay.
    wrap = ("pixelseg.report.figures", "save_png", 5, False)
    # The manifest saved after every image (not every 2 s), so the count below is exact.
    setup = "import pixelseg.inference.manifest as m; m.SAVE_EVERY_S = 0.0"
    assert _killed(wrap, ["predict", str(run_dir), images, "--out", str(out)], setup) == -9
    for path in out.glob("*.png"):
        Image.open(path).load()  # nothing truncated under a final name
    rerun = _run(["predict", str(run_dir), images, "--out", str(out)])
    assert rerun.returncode == 0, rerun.stderr
    assert "skipped 2 already done" in rerun.stdout
    expected = sorted(p.name for p in (tmp_path / "whole").glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == expected
    for name in expected:
        a = np.asarray(Image.open(out / name))
        b = np.asarray(Image.open(tmp_path / "whole" / name))
        assert np.array_equal(a, b), f"{name} differs after the kill"


@pytest.mark.slow
def test_an_export_killed_before_its_check_leaves_no_file_and_reruns(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    run_dir, _ = trained
    out = tmp_path / "model.onnx"
    args = ["export", str(run_dir), "--out", str(out)]
    # Killed once the graph is written but before the parity check has passed.
    wrap = ("pixelseg.export.onnx", "check_parity", 1, False)
    assert _killed(wrap, args) == -9
    assert not out.exists()  # only a check that passed puts the file under its name
    done = _run(args)
    assert done.returncode == 0, done.stderr
    assert "argmax agreement" in done.stdout and out.is_file()
