"""``bench/inference_speed.py``: the seam check finds no split object, and the table renders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
try:
    import inference_speed
finally:
    sys.path.remove(str(REPO / "bench"))


def test_the_seam_check_counts_every_object_once() -> None:
    row = inference_speed.seam_row(size=1024, block=256)
    assert row["objects"] > 50 and row["objects_checked"] == row["objects"]
    assert row["split_objects"] == row["lost_objects"] == 0
    assert row["predicted"] == row["objects"]


def test_the_section_quotes_every_row_against_the_peer(tmp_path: Path) -> None:
    peer = [
        {"side": "smp", "path": p, "batch": b, "images_per_s": r, "gflop_per_image": 60.0}
        for p, r in (("eager fp32", 1.0), ("channels_last fp32", 2.0))
        for b in (1, 8)
    ]
    ours = [
        {
            "side": "pixelseg",
            "path": path,
            "plan": plan,
            "reason": "",
            "batch": b,
            "images_per_s": 2.4 if (path, b) == ("int8", 8) else rate,
            "first_call_s": 2.5,
            "gflop_per_image": 60.0,
        }
        for path, plan, rate in (
            ("auto", "bf16+channels_last", 3.0),
            ("fp32", "fp32+channels_last", 1.5),
            ("int8", "int8", 3.0),
        )
        for b in (1, 8)
    ]
    data = {
        "machine": {"cpu": "a CPU", "torch_threads": 2, "git_commit": "abc"},
        "native_bf16": True,
        "gemm_gflops": {"fp32": 200.0, "bf16": 400.0},
        "peer": peer,
        "pixelseg": ours,
        "agreement": [
            {
                "path": "auto",
                "plan": "bf16+channels_last",
                "pixel_agreement": 0.999,
                "miou": 0.7,
                "fp32_miou": 0.71,
            },
            {
                "path": "int8",
                "plan": "int8",
                "pixel_agreement": 0.996,
                "miou": 0.708,
                "fp32_miou": 0.71,
            },
        ],
        "tiled": {
            "size": 8192,
            "plan": "fp32",
            "seconds": 100.0,
            "megapixels_per_s": 0.67,
            "peak_rss_gib": 1.9,  # 2.04 GB: over the target
            "streamed": True,
            "command": "pixelseg predict RUN scene-8192.tif --out OUT --engine pytorch",
        },
        "seams": {
            "size": 4096,
            "objects": 10,
            "tile": 512,
            "overlap": 128,
            "split_objects": 0,
            "lost_objects": 0,
            "predicted": 10,
            "merge_seconds": 1.0,
        },
    }
    data["shipped"] = [
        {
            **row,
            "side": "pixelseg unet_resnet18 GroupNorm (shipped config)",
            "gflop_per_image": 30.0,
        }
        for row in ours
        if row["path"] == "auto"
    ]
    data["shipped_agreement"] = [{**data["agreement"][0], "plan": "int8"}]
    (tmp_path / "inference_speed.json").write_text(json.dumps(data))
    text = "\n".join(inference_speed.inference_section(tmp_path))
    # 3 images/s at 60 GFLOP each is 180 GFLOP/s: 90 % of the GEMM rate, 1.5x the best peer.
    assert "| pixelseg | auto (bf16+channels_last) | 8 | 3.00 | 1.50 | 180 | 90 | 2.5 |" in text
    assert "| smp | eager fp32 | 1 | 1.00 | 0.50 | 60 | 30 | — |" in text
    targets = {line.split(" | ")[0]: line for line in text.splitlines() if line.endswith(" |")}
    assert targets["| default path (auto) >= 90 % of the fp32 GEMM rate, batch 8"].endswith(
        "| 90 % (bf16+channels_last) | yes |"
    )
    assert "3.00 vs 2.00 images/s (channels_last fp32) | yes |" in text
    # int8's worse batch is 1.6x fp32 (2.4 / 1.5): under 1.8x, so not met however well it agrees.
    assert "| 1.60x (worse batch), 99.60 %, +0.20 points | no |" in text
    assert "| 8192² image under 2 GB peak memory | 2.04 GB | no |" in text
    assert "streamed strip by strip" in text
    # The shipped config's model: 3 images/s at 30 GFLOP is 45 % of the 200 GFLOP/s GEMM rate.
    assert "GEMM, batch 1 | 45 % (bf16+channels_last) | no |" in text
    assert "| auto, shipped config's unet_resnet18 (GroupNorm) | int8 | 99.90 % |" in text
    assert "| auto | bf16+channels_last | 99.90 % | 70.00 | 71.00 |" in text
    assert "0 objects split, 0 lost" in text
    assert inference_speed.inference_section(tmp_path / "missing") == []
