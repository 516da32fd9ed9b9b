"""Presets end to end: targets stay exact, same seed same page, effects recorded."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import ecg_like
from test_distort_geometric import hit_rate

from ecgsynth.dataset import ECGPageSet
from ecgsynth.distort import EFFECTS, PRESETS, build_pipeline
from ecgsynth.export import export
from ecgsynth.sources import ArraySource, embedded_records_dir


@pytest.fixture(scope="module")
def source() -> ArraySource:
    return ArraySource(ecg_like(4, seed=5), fs=500)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_keeps_points_on_the_trace_and_is_reproducible(source, preset):
    pages = ECGPageSet(3, source, layout="random", preset=preset, dpi=80, seed=1)
    a = pages.render_batch([0, 1, 2])
    assert hit_rate(a) >= 0.99
    b = pages.render_batch([0, 1, 2])
    assert torch.equal(a["image"], b["image"])
    alone = pages.render_batch([1])  # a page does not depend on its batch (up to float rounding
    # of batched convolutions)
    assert float((a["image"][1:2] - alone["image"]).abs().max()) < 1e-4
    assert torch.equal(a["mask_bits"][1:2], alone["mask_bits"])
    other = ECGPageSet(3, source, layout="random", preset=preset, dpi=80, seed=2)
    assert not torch.equal(a["image"], other.render_batch([0, 1, 2])["image"])
    assert a["homography"].shape == (3, 3, 3)
    if preset != "clean":
        assert a["meta"][0]["distortion"]
        clean = ECGPageSet(3, source, layout="random", preset="clean", dpi=80, seed=1)
        diff = (a["image"] - clean.render_batch([0, 1, 2])["image"]).abs().mean()
        assert float(diff) > 0.01


@pytest.mark.parametrize("name", [*sorted(EFFECTS), "warp"])
def test_each_effect_alone_keeps_targets(source, name):
    if name == "warp":
        config = {"warp": {"rotation_deg": 8.0, "perspective": 0.05, "folds": 2, "curl": 0.03}}
    else:
        config = {"page": [{"name": name, "p": 1.0, "strength": 0.8}]}
    pages = ECGPageSet(2, source, layout="3x4", preset=config, dpi=60, seed=3)
    batch = pages.render_batch([0, 1])
    assert hit_rate(batch) >= 0.99
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown preset"):
        build_pipeline("sepia")
    with pytest.raises(ValueError, match="unknown effect"):
        build_pipeline({"page": [{"name": "Glitter"}]})
    with pytest.raises(ValueError, match="page, warp, camera"):
        build_pipeline({"pages": []})


def test_export_records_distortion_parameters(tmp_path):
    records = embedded_records_dir()  # real records, no simulation start-up
    report = export(tmp_path, num=2, seed=0, records=records, preset="heavy", dpi=60,
                    layout="3x4", progress=False)  # fmt: skip
    assert report.written == ["ecg_00000", "ecg_00001"]
    doc = json.loads((tmp_path / "ecg_00000.json").read_text())
    assert doc["preset"] == "heavy" and doc["distortion"]
    assert len(doc["homography"]) == 3
    again = tmp_path / "again"
    export(again, num=2, seed=0, records=records, preset="heavy", dpi=60, layout="3x4",
           progress=False)  # fmt: skip
    for suffix in (".png", ".json", ".dat", ".hea"):
        a = (tmp_path / f"ecg_00001{suffix}").read_bytes()
        assert a == (again / f"ecg_00001{suffix}").read_bytes(), suffix


def test_returned_images_do_not_share_the_pipelines_buffers(source):
    """The page stage works in a buffer the pipeline keeps; what it returns is new."""
    pages = ECGPageSet(4, source, layout="3x4", preset="heavy", dpi=60, seed=4)
    first = pages.render_batch([0, 1])
    kept = first["image"].clone()
    pages.render_batch([2, 3])
    assert torch.equal(first["image"], kept)
