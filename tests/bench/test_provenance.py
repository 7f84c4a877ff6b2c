"""``bench/provenance.py``: each row names its CPU class and commit."""

from __future__ import annotations

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
try:
    import provenance
finally:
    sys.path.remove(str(REPO / "bench"))


def _machine(flags: list[str], commit: str = "e6d8245eb6cc") -> dict[str, object]:
    return {"cpu": "AMD EPYC", "cpu_flags": flags, "git_commit": commit}


def test_cpu_class_names_the_widest_unit() -> None:
    assert provenance.cpu_class(_machine(["fma", "avx2"])) == "AMD EPYC, AVX2 only"
    assert provenance.cpu_class(_machine(["avx2", "avx512f"])) == "AMD EPYC, AVX-512"
    bf16 = ["avx2", "avx512f", "avx512_bf16"]
    assert provenance.cpu_class(_machine(bf16)) == "AMD EPYC, AVX-512 BF16"
    assert provenance.cpu_class(_machine([*bf16, "amx_tile", "amx_bf16"])) == "AMD EPYC, AMX"
    assert provenance.cpu_class({"cpu": "X"}) == "X"


def test_measured_on_lists_each_distinct_machine_and_commit_once() -> None:
    rows = [
        {"machine": _machine(["avx2"])},
        {"machine": _machine(["avx2"])},
        {"machine": _machine(["avx2", "avx512f", "avx512_bf16"], commit="b8066fbd")},
    ]
    assert provenance.measured_on(rows) == (
        "AMD EPYC, AVX2 only @ e6d8245; AMD EPYC, AVX-512 BF16 @ b8066fb"
    )
    assert provenance.measured_on([{}]) == "unknown CPU @ ?"
