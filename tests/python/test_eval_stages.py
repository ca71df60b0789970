"""The per-stage timing line of `clipneg eval` and `precision = auto` on the CPU backend.

One demo run with `--set run.precision=auto` (1 rank) and one with 2 ranks: the line
`stages (...): decode=MAX/MEAN ... total=T` names every stage, the stages plus `other` add up to
the total (each value is printed to the millisecond: 8 roundings of 0.5 ms), every tower that ran
took time, and the file records the resolved precision "fp32", never "auto".
"""
import re

import h5py
import pytest

from eval_common import DEMO, SMALL, env_for, require_binaries, run_eval

STAGES = ["decode", "tokenize", "text_tower", "image_tower", "similarity", "io", "other", "decode_busy"]


def parse_stages(stderr):
    lines = [l for l in stderr.splitlines() if "stages (s, max/mean over" in l]
    assert len(lines) == 1, stderr[-3000:]
    line = lines[0]
    vals = {k: (float(a), float(b)) for k, a, b in re.findall(r" (\w+)=([0-9.eE+-]+)/([0-9.eE+-]+)", line)}
    total = float(re.search(r"total=([0-9.]+)", line).group(1))
    return vals, total, line


@pytest.mark.parametrize("np_", [1, 2])
def test_stage_line(tmp_path, np_):
    require_binaries()
    p = run_eval(np_, DEMO, SMALL + ["--set", "run.precision=auto"], env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    vals, total, line = parse_stages(p.stderr)
    assert list(vals) == STAGES, line
    assert f"over {np_} ranks" in line
    for k, (mx, mean) in vals.items():
        if k != "other":
            assert mx >= 0 and mean >= 0, line
        assert mean <= mx + 1e-9, line
    assert vals["text_tower"][0] > 0 and vals["image_tower"][0] > 0 and vals["decode_busy"][0] > 0, line
    if np_ == 1:  # one rank: max = mean, so the stages of that rank must add up to the total
        s = sum(vals[k][0] for k in STAGES if k != "decode_busy")
        assert abs(s - total) <= 8 * 0.0005 + 1e-6, line
    with h5py.File(tmp_path / "demo.h5", "r") as f:
        assert f.attrs["backend"] == "cpu"
        assert f.attrs["precision"] == "fp32"  # auto resolved, on the CPU backend
