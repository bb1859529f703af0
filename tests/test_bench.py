"""`perse bench` runs end to end and reports every figure (speed itself is never asserted)."""

import json

import torch

from perse.avatar import Avatar, save_avatar
from perse.cli import main
from tiny_models import tiny_categories, tiny_head


def test_bench_reports_all_figures(tmp_path, capsys):
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=400)
    a.gaussians_params["color_logit"].data = torch.randn(400, 3)
    path = tmp_path / "tiny.perse"
    save_avatar(a, path)
    assert main(["bench", "--avatar", str(path), "--backend", "cpu", "--size", "32", "--repeats", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    figures = {(r["figure"], r["size"]) for r in report["rows"]}
    assert figures == {("expression update", None), ("render", 32), ("expression frame", 32),
                       ("look change", None), ("train step", 256)}
    assert all(r["ms"] > 0 for r in report["rows"])
    assert "torch threads" in report["machine"]


def test_bench_drive_reports_tracking_time_and_jitter():
    from perse.bench.engine import bench_drive
    from perse.head import load_builtin_head

    rows = {r["figure"]: r for r in bench_drive(load_builtin_head(), frames=12)}
    assert rows["drive tracking"]["ms"] > 0 and rows["drive tracking"]["p90_ms"] >= rows["drive tracking"]["ms"]
    assert 0 < rows["drive jitter"]["percent"] < 100
