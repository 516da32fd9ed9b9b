"""ECGImageDataset / ECGPageSet: reproducible, sharded, resumable streams of exact pages."""

from __future__ import annotations

import pytest
import torch
from helpers import ecg_like
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from ecgsynth.dataset import ECGImageDataset, ECGPageSet, PageSynth, collate_pages
from ecgsynth.sources import ArraySource
from ecgsynth.views import to_tv_tensors

DPI = 60  # small pages keep the tests fast; geometry is resolution independent


@pytest.fixture(scope="module")
def source() -> ArraySource:
    return ArraySource(ecg_like(6, seed=3, seconds=12.0), fs=500)


def keys_of(batch: dict) -> list[tuple]:
    return [tuple(m["key"]) for m in batch["meta"]]


def take(iterable, n: int) -> list:
    it = iter(iterable)
    return [next(it) for _ in range(n)]


def test_batches_have_the_documented_keys(source):
    batch = next(iter(ECGImageDataset(source, dpi=DPI, batch_size=3, seed=0)))
    for key in ("image", "mask", "points", "boxes", "signal", "signal_mask", "fs", "px_per_mm"):
        assert key in batch
    assert batch["image"].shape[:2] == (3, 3)
    assert batch["points"].shape == (3, 15, 5000, 2)
    assert len(batch["meta"]) == 3


def test_same_seed_same_batches_other_seed_differs(source):
    a = take(ECGImageDataset(source, dpi=DPI, batch_size=2, seed=5), 3)
    b = take(ECGImageDataset(source, dpi=DPI, batch_size=2, seed=5), 3)
    c = take(ECGImageDataset(source, dpi=DPI, batch_size=2, seed=6), 1)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["signal"], y["signal"])
    assert not torch.equal(a[0]["image"], c[0]["image"])


def test_workers_never_repeat_a_page_and_any_worker_count_gives_the_same_stream(source):
    runs = {}
    for workers in (0, 2):
        ds = ECGImageDataset(source, dpi=DPI, batch_size=2, seed=1, length=6)
        batches = list(DataLoader(ds, batch_size=None, num_workers=workers))
        assert len(batches) == 6
        keys = [k for b in batches for k in keys_of(b)]
        assert len(set(keys)) == len(keys) == 12
        images = torch.cat([b["image"] for b in batches]).flatten(1)
        assert len({hash(row.numpy().tobytes()) for row in images}) == 12
        runs[workers] = images
    assert torch.equal(runs[0], runs[2])


def test_ranks_see_different_pages(source, monkeypatch):
    pages = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        pages[rank] = take(ECGImageDataset(source, dpi=DPI, batch_size=2, seed=1), 2)
    assert not torch.equal(pages[0][0]["image"], pages[1][0]["image"])
    assert set(keys_of(pages[0][0])).isdisjoint(keys_of(pages[1][0]))


def test_resume_reproduces_the_stream(source):
    ds = ECGImageDataset(source, dpi=DPI, batch_size=2, seed=2)
    it = iter(ds)
    first = [next(it) for _ in range(3)]
    state = ds.state_dict()
    assert state["position"] == 3
    rest = [next(it) for _ in range(2)]
    resumed = ECGImageDataset(source, dpi=DPI, batch_size=2, seed=2)
    resumed.load_state_dict(state)
    again = take(resumed, 2)
    for x, y in zip(rest, again):
        assert keys_of(x) == keys_of(y) and torch.equal(x["image"], y["image"])
    assert keys_of(first[0]) != keys_of(again[0])


def test_resume_with_workers_continues_round_robin(source):
    full = list(DataLoader(ECGImageDataset(source, dpi=DPI, batch_size=1, seed=3, length=6),
                           batch_size=None, num_workers=2))  # fmt: skip
    ds = ECGImageDataset(source, dpi=DPI, batch_size=1, seed=3, length=6)
    ds.load_state_dict({"seed": 3, "epoch": 0, "position": 3})
    tail = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert [keys_of(b) for b in tail] == [keys_of(b) for b in full[3:]]


def test_epochs_differ(source):
    ds = ECGImageDataset(source, dpi=DPI, batch_size=2, seed=2)
    e0 = take(ds, 1)[0]
    ds.set_epoch(1)
    e1 = take(ds, 1)[0]
    assert not torch.equal(e0["image"], e1["image"])


def test_validation_set_is_identical_for_any_worker_count(source):
    pages = ECGPageSet(5, source, dpi=DPI, seed=9)
    runs = [list(DataLoader(pages, batch_size=2, num_workers=w, collate_fn=collate_pages))
            for w in (0, 2)]  # fmt: skip
    for a, b in zip(*runs):
        assert torch.equal(a["image"], b["image"])
        torch.testing.assert_close(a["points"], b["points"], rtol=0, atol=0, equal_nan=True)
    batched = pages.render_batch([0, 1])
    assert torch.equal(batched["image"], runs[0][0]["image"])


def test_per_sample_mode_and_gpu_module_agree(source):
    rendered = take(ECGImageDataset(source, dpi=DPI, batch_size=None, seed=4), 2)
    assert rendered[0]["image"].dim() == 3
    raw = take(ECGImageDataset(source, dpi=DPI, batch_size=None, seed=4, render=False), 2)
    batch = PageSynth(dpi=DPI)(collate_pages(raw))
    assert torch.equal(batch["image"], torch.stack([r["image"] for r in rendered]))


def test_cuda_with_workers_is_refused(source):
    ds = ECGImageDataset(source, dpi=DPI, batch_size=1, device="cuda")
    with pytest.raises(RuntimeError, match="num_workers=0"):
        next(iter(DataLoader(ds, batch_size=None, num_workers=1)))


def test_tv_tensors_rotation_keeps_points_on_the_trace(source):
    sample = ECGPageSet(1, source, layout="3x4", dpi=100, seed=0)[0]
    view = to_tv_tensors(sample, lead_masks=True)
    torch.manual_seed(0)
    out = v2.RandomRotation(12)(view)
    # nearest-neighbour resampling of a 1-px line moves it by up to a pixel: allow that much
    masks = torch.nn.functional.max_pool2d(out["lead_masks"][None].float(), 3, 1, 1)[0] > 0
    points = out["points"]
    hits = total = 0
    for c in range(masks.shape[0]):
        p = points[c][torch.isfinite(points[c][:, 0])]
        col, row = p[:, 0].round().long(), p[:, 1].round().long()
        inside = (col >= 0) & (col < masks.shape[2]) & (row >= 0) & (row < masks.shape[1])
        hits += int(masks[c, row[inside], col[inside]].sum())
        total += int(inside.sum())
    assert total > 10_000
    assert hits / total > 0.995
    assert out["boxes"].shape == (13, 4) and out["box_channel"].tolist()[-1] == 12
    assert not torch.equal(out["image"], view["image"])


def test_bad_options_are_refused(source):
    with pytest.raises(ValueError, match="preset"):
        ECGImageDataset(source, preset="sepia")
    with pytest.raises(ValueError, match="per-sample"):
        ECGImageDataset(source, render=False)
    with pytest.raises(TypeError, match="infinite"):
        len(ECGImageDataset(source))
    with pytest.raises(IndexError):
        ECGPageSet(2, source)[2]


@pytest.mark.slow
def test_soak_memory_is_flat(source):
    """10 000 small batches: resident memory after warm-up must not grow."""
    import resource

    ds = ECGImageDataset(source, dpi=50, batch_size=2, seed=0)
    it = iter(ds)
    for _ in range(200):
        next(it)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10_000):
        next(it)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB"


def _rank_keys(rank: int, world: int, init_file: str, out_dir: str) -> None:
    """One torch.distributed (gloo) rank: record the keys of its first two batches."""
    import json
    from pathlib import Path

    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    try:
        source = ArraySource(ecg_like(6, seed=3, seconds=12.0), fs=500)
        batches = take(ECGImageDataset(source, dpi=DPI, batch_size=2, seed=1), 2)
        keys = [list(k) for b in batches for k in keys_of(b)]
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(keys))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_see_different_pages(tmp_path):
    import json

    import torch.multiprocessing as mp

    mp.spawn(_rank_keys, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    keys = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [k[2] for k in keys[0]] == [0] * 4 and [k[2] for k in keys[1]] == [1] * 4
    assert not {tuple(k) for k in keys[0]} & {tuple(k) for k in keys[1]}


def test_defaults_construct_without_any_download():
    ds = ECGImageDataset(seed=0)  # embedded records + simulations; nothing is simulated yet
    assert ds.batch_size == 8 and ds.options.layout == "random" and ds.options.preset == "clean"
    assert ds.source.fs == 500 and ds.source.num_samples == 5000
    assert len(ds.source) > 8  # 8 embedded real records plus the synthetic pool
