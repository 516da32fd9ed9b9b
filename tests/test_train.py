"""U-Net, Lightning module/data module and train.py (Hydra) on the CPU, with tiny pages."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from digitizer import lightning as dl
from digitizer.lightning import CropStream, PageDataModule, SegmenterModule, crop_pages, trace_loss
from digitizer.unet import UNet, build_unet, load_checkpoint, save_checkpoint
from ecgsynth import default_source
from ecgsynth.sources import embedded_records_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# tiny pages, crops and model: every run below takes seconds
TINY = [
    "synth=records",
    "model=tiny",
    "synth.dpi=[50,60]",
    "data.crop_size=[48,64]",
    "data.crops_per_page=2",
    "data.num_workers=0",
    "data.val.num=1",
    "data.val.dpi=50",
    "data.val.presets=[clean]",
]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy shared CPU, OpenMP threads that spin-wait for a core
    make small tensor ops 10-30x slower (train.py sets OMP_WAIT_POLICY=PASSIVE instead, which
    cannot be changed once torch is loaded)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train_module():
    """``train.py`` imported by path (it is a script at the repository root, not a package)."""
    spec = importlib.util.spec_from_file_location("train", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def source():
    return default_source(synthetic=False)


def tiny_datamodule(source, **kwargs) -> PageDataModule:
    synth = {"source": source, "dpi": (50, 60), "presets": {"clean": 1, "medium": 1}}
    args = dict(pages_per_batch=1, crops_per_page=2, crop_size=(48, 64), num_workers=0)
    args.update(val={"num": 1, "dpi": 50, "presets": ["clean"]}, **kwargs)
    return PageDataModule(synth, **args)


# ---- U-Net ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 64), (101, 250)])
@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_unet_any_size(variant, size):
    net = build_unet(variant).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        assert net(x).shape == (2, 1, *size)
    prob = net.predict_proba(x)
    assert prob.shape == (2, *size) and 0 <= prob.min() and prob.max() <= 1
    with pytest.raises(ValueError, match="expected"):
        net(torch.rand(1, 1, *size))


def test_unet_output_is_aligned_with_input():
    """Cropping after padding keeps pixels in place: a model that copies its input's red
    channel must reproduce it exactly at odd sizes (bad padding or cropping would shift it)."""
    net = UNet(depth=3, width=4, max_width=8, norm="none").eval()
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    # route the input straight to the output: level-0 conv copies red, head copies channel 0
    conv = net.encoders[0][0]
    conv.weight.data[0, 0, 1, 1] = 0.25  # undo the (x - 0.5) / 0.25 normalisation
    conv.bias.data[0] = 0.5
    dec = net.decoders[0][0]
    dec.weight.data[0, 0, 1, 1] = 1.0
    net.head.weight.data[0, 0] = 1.0
    x = torch.rand(1, 3, 37, 51)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:, 0], x[:, 0])


def test_predict_proba_tiles_cover_every_pixel_once(monkeypatch):
    net = build_unet("tiny")
    # a pointwise stand-in for the network: tiling must reproduce it (up to SIMD rounding)
    fake = lambda image: image[:, :1] * 8 - 4  # noqa: E731
    monkeypatch.setattr(UNet, "fused", lambda self: fake)
    x = torch.rand(2, 3, 300, 413)
    full = net.predict_proba(x)
    for tile, overlap in [(128, 16), (200, 64), (64, 0)]:
        tiled = net.predict_proba(x, tile=tile, overlap=overlap)
        torch.testing.assert_close(tiled, full, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="tile"):
        net.predict_proba(x, tile=64, overlap=32)


def test_predict_proba_matches_eval_forward():
    net = build_unet("small")
    net.train()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for _ in range(3):
            net(torch.rand(4, 3, 64, 64) * 0.5)
    x = torch.rand(1, 3, 90, 130)
    with torch.no_grad():
        expected = torch.sigmoid(net.eval()(x)[:, 0])
    net.train()
    torch.testing.assert_close(net.predict_proba(x), expected, atol=1e-5, rtol=0)
    assert net.training  # predict_proba leaves the module's mode alone


# ---- checkpoints ----------------------------------------------------------------------------


def _trained_net() -> UNet:
    torch.manual_seed(0)
    net = build_unet("tiny", width=6)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(4, 3, 40, 40), (torch.rand(4, 40, 40) > 0.9).float()
    for _ in range(3):
        loss = trace_loss(net(x)[:, 0], y)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def test_checkpoint_round_trip(tmp_path):
    net = _trained_net()
    path = tmp_path / "sub" / "unet.pt"
    save_checkpoint(net, path, val_snr_db=7.5, note="test")
    loaded = load_checkpoint(path)
    assert loaded.config == net.config and not loaded.training
    assert loaded.meta == {"val_snr_db": 7.5, "note": "test"}
    x = torch.rand(2, 3, 70, 45)
    assert torch.equal(loaded.predict_proba(x), net.predict_proba(x))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "ecgsynth-unet/1" and set(payload) == {
        "format",
        "config",
        "state_dict",
        "meta",
    }


def test_corrupt_checkpoints_raise_clear_errors(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match=f"{missing}: no such checkpoint"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match=f"{garbage}: not a readable torch checkpoint"):
        load_checkpoint(garbage)
    net = _trained_net()
    good = tmp_path / "good.pt"
    save_checkpoint(net, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ValueError, match=f"{truncated}: not a readable"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": net.state_dict(), "pytorch-lightning_version": "2.6"}, foreign)
    with pytest.raises(ValueError, match=f"{foreign}: not an ecgsynth-unet/1.*Lightning"):
        load_checkpoint(foreign)
    mismatched = tmp_path / "mismatched.pt"
    payload = torch.load(good, weights_only=True)
    payload["config"]["width"] = 8
    torch.save(payload, mismatched)
    with pytest.raises(ValueError, match=f"{mismatched}: weights do not match"):
        load_checkpoint(mismatched)


# ---- data -----------------------------------------------------------------------------------


def test_crop_stream_batches(source):
    stream = CropStream(
        source,
        dpi=(50, 90),
        presets={"clean": 1, "medium": 1},
        pages_per_batch=2,
        crops_per_page=3,
        crop_size=(32, 80),
        trace_bias=1.0,
    )
    it = iter(stream)
    batches = [next(it) for _ in range(4)]
    for i, b in enumerate(batches):
        n, _, s, s2 = b["image"].shape
        assert n == 6 and s == s2 and 32 <= s <= 80 and s % 16 == 0
        assert b["mask"].shape == (6, s, s) and b["item"] == i
        assert 50 <= b["dpi"][0] <= 90 and b["preset"][0] in ("clean", "medium")
        assert (b["mask"].flatten(1) > 0).any(1).all()  # trace_bias=1: every crop shows a trace
        assert b["key"][:, 3].tolist() == [2 * i] * 3 + [2 * i + 1] * 3
    # a batch shares its dpi; batches draw their own (two equal draws out of four is unlikely)
    assert len({float(b["dpi"][0]) for b in batches}) > 2
    # the same stream again gives the same pixels
    again = next(iter(stream))
    assert torch.equal(again["image"], batches[0]["image"])


def test_crop_pages_unbiased_crops_can_miss_traces():
    image = torch.rand(2, 3, 100, 120)
    mask = torch.zeros(2, 100, 120, dtype=torch.uint8)
    mask[:, 50, :] = 1
    out = crop_pages({"image": image, "mask": mask}, 30, 20, 0.0, np.random.default_rng(0))
    hits = (out["mask"].flatten(1) > 0).any(1).float().mean()
    assert 0.05 < hits < 0.8
    biased = crop_pages({"image": image, "mask": mask}, 30, 20, 1.0, np.random.default_rng(0))
    assert (biased["mask"].flatten(1) > 0).any(1).all()
    assert crop_pages({"image": image, "mask": mask}, 500, 1, 1.0, np.random.default_rng(0))[
        "image"
    ].shape[-2:] == (100, 100)  # clamped to the page


def _consume(dm: PageDataModule, n: int, it=None) -> list[dict]:
    """``n`` training batches as the trainer receives them (through the transfer hook)."""
    it = iter(dm.train_dataloader()) if it is None else it
    return [dm.on_before_batch_transfer(next(it), 0) for _ in range(n)]


def test_resumed_datamodule_continues_the_stream(source):
    dm = tiny_datamodule(source)
    dm.setup("fit")
    first = _consume(dm, 3)  # the iterator also fetched batch 3: prefetch
    state = dm.state_dict()
    assert state["stream"] == {"seed": 0, "epoch": 0, "position": 3}
    reference = _consume(dm, 2)  # a new iterator (a new Lightning epoch) goes on at batch 3
    assert [int(b["item"]) for b in reference] == [3, 4]
    assert not any(torch.equal(reference[0]["key"], b["key"]) for b in first)

    resumed = tiny_datamodule(source)
    resumed.load_state_dict(state)  # before setup(), as Lightning may do
    resumed.setup("fit")
    got = _consume(resumed, 2)
    assert [int(b["item"]) for b in got] == [3, 4]
    for a, b in zip(got, reference):
        assert torch.equal(a["key"], b["key"]) and torch.equal(a["image"], b["image"])


class RecordKeys(pl.Callback):
    """Records the (stream epoch, page) key of the first page of every training batch."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.keys.append((int(batch["key"][0, 1]), int(batch["key"][0, 3])))


def _fit_steps(source, tmp_path, max_steps: int, ckpt_path=None, every: int | None = None):
    recorder = RecordKeys()
    callbacks = [recorder]
    if every:
        callbacks.append(ModelCheckpoint(tmp_path, every_n_train_steps=every, save_last=True))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_train_batches=3,  # Lightning epochs of 3 batches: the runs cross one
        limit_val_batches=0,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=bool(every),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = SegmenterModule({"variant": "tiny"}, digitize=False)
    trainer.fit(model, datamodule=tiny_datamodule(source), ckpt_path=ckpt_path)
    return recorder.keys


@pytest.mark.parametrize("stop", [2, 3])  # mid-epoch, end of an epoch
def test_resumed_training_run_continues_the_stream(source, tmp_path, stop):
    straight = _fit_steps(source, tmp_path / "a", max_steps=5)
    assert straight == [(0, p) for p in range(5)]  # pages_per_batch=1, one stream
    first = _fit_steps(source, tmp_path / "b", max_steps=stop, every=stop)
    second = _fit_steps(source, tmp_path / "c", 5, ckpt_path=tmp_path / "b" / "last.ckpt")
    assert first + second == straight


# ---- module ---------------------------------------------------------------------------------


def test_trace_loss_prefers_the_right_answer():
    target = (torch.rand(2, 32, 32) > 0.95).float()
    good = trace_loss(target * 20 - 10, target)
    bad = trace_loss(10 - target * 20, target)
    assert good["loss"] < 0.05 < bad["loss"]
    assert good["dice"] < 0.01 and bad["dice"] > 0.99


class FakeDigitizer:
    """Stands in for digitizer.pipeline.Digitizer: every lead is 0.1 mV (or it fails)."""

    fail = False

    def __init__(self, checkpoint=None, fs: float = 500.0, num_samples: int = 5000) -> None:
        self.num_samples = num_samples

    def digitize(self, image):
        # validation reads the page itself, with the model under training as the segmenter
        assert image.ndim == 3 and isinstance(self.segmenter, dl.UNetSegmenter)
        prob = self.segmenter(image[None], px_per_mm=2.0)
        assert prob.shape == (1, *image.shape[1:])
        if self.fail:
            raise RuntimeError("no grid found")
        return type("Rec", (), {"signal": np.full((12, self.num_samples), 0.1, np.float32)})()


def _fit_with_fake_digitizer(tmp_path, source, monkeypatch, fail: bool) -> dict[str, str]:
    monkeypatch.setattr(FakeDigitizer, "fail", fail)
    monkeypatch.setattr(dl, "_digitizer_class", lambda: FakeDigitizer)
    dm = tiny_datamodule(source)
    model = SegmenterModule({"variant": "tiny"}, num_overlays=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        limit_train_batches=1,
        logger=CSVLogger(tmp_path, name="csv", version=""),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    rows = list(csv.DictReader(open(tmp_path / "csv" / "metrics.csv")))
    return {k: v for row in rows for k, v in row.items() if v}


def test_validation_scores_end_to_end(tmp_path, source, monkeypatch):
    metrics = _fit_with_fake_digitizer(tmp_path, source, monkeypatch, fail=False)
    # reference: the validation page scored against a constant 0.1 mV estimate
    page = dl.ValPages(1, ["clean"], source, dpi=50)[0]
    ref = torch.where(page["signal_mask"], page["signal"], torch.nan).numpy()
    from digitizer.metrics import score_record

    rows = score_record(ref, np.full((12, ref.shape[1]), 0.1, np.float32), 500.0)
    expected = np.mean([r["snr_db"] for r in rows if not np.isnan(r["snr_db"])])
    assert float(metrics["val/snr_db"]) == pytest.approx(expected, abs=1e-4)
    assert "val/aligned_snr_db" in metrics and float(metrics["val/digitize_failures"]) == 0
    assert 0 <= float(metrics["val/dice"]) <= 1
    assert list((tmp_path / "csv" / "overlays").glob("*.png"))  # overlays for the CSV logger


def test_failed_digitization_scores_zero(tmp_path, source, monkeypatch):
    with pytest.warns(UserWarning, match="digitizer failed"):
        metrics = _fit_with_fake_digitizer(tmp_path, source, monkeypatch, fail=True)
    assert float(metrics["val/snr_db"]) == 0.0 and float(metrics["val/digitize_failures"]) == 1


# ---- Hydra configs and train.py ---------------------------------------------------------------


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def _compose(overrides: list[str], tmp_path: Path):
    with initialize_config_dir(str(CONFIGS), version_base=None):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={tmp_path}"])
    return cfg


@pytest.mark.parametrize("experiment", [None, *_options("experiment")])
def test_experiment_configs_compose(experiment, tmp_path):
    overrides = [] if experiment is None else [f"experiment={experiment}"]
    cfg = _compose(overrides, tmp_path)
    model = instantiate(cfg.model, _convert_="all")
    assert isinstance(model, SegmenterModule) and isinstance(model.net, UNet)
    assert model.net.config == build_unet(cfg.model.net.variant).config
    synth = OmegaConf.to_container(cfg.synth, resolve=True)
    synth["source"] = instantiate(cfg.synth.source)
    data = instantiate(cfg.data, synth=synth, _convert_="all", _recursive_=False)
    stream = data.make_train_stream()  # validates dpi range, presets and crop sizes
    assert stream.dpi_range == tuple(cfg.synth.dpi)
    if experiment is not None:
        assert str(cfg.export_path).startswith("checkpoints/unet_")


@pytest.mark.parametrize("synth", _options("synth"))
def test_synth_configs_compose(synth, tmp_path):
    extra = [f"synth.source.paths={embedded_records_dir()}"] if synth == "wfdb" else []
    cfg = _compose([f"synth={synth}", *extra], tmp_path)
    src = instantiate(cfg.synth.source)
    assert len(src) > 0 and src.fs == 500


@pytest.mark.parametrize("conventions", ["random", "standard", None])
def test_synth_conventions_reach_the_training_stream(conventions, tmp_path, source):
    """``synth.conventions`` (default ``random``) decides how the stream's pages are printed;
    validation pages stay on the classic convention."""
    overrides = [] if conventions is None else [f"synth.conventions={conventions}"]
    cfg = _compose(overrides, tmp_path)
    synth = OmegaConf.to_container(cfg.synth, resolve=True)
    synth["source"] = source
    data = instantiate(cfg.data, synth=synth, _convert_="all", _recursive_=False)
    stream = data.make_train_stream()
    expected = conventions or "random"
    assert stream.options.conventions == expected
    assert stream._options(60, "clean").conventions == expected
    specs = [stream._options(60, "clean").spec(seed) for seed in range(6)]
    assert (len({s.convention for s in specs}) > 1) == (expected == "random")


@pytest.mark.parametrize("trainer", _options("trainer"))
@pytest.mark.parametrize("debug", [None, *_options("debug")])
def test_trainer_and_debug_configs_compose(trainer, debug, tmp_path, train_module):
    overrides = [f"trainer={trainer}"] + ([] if debug is None else [f"debug={debug}"])
    cfg = _compose(overrides, tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if cfg.trainer.accelerator == "cpu":  # GPU trainers cannot be built here
        _, _, built = train_module.build(cfg)
        assert built.max_steps == (1 if debug == "fast_dev_run" else cfg.trainer.max_steps)


def _run_train(args: list[str], tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={tmp_path}"]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_train_py_fast_dev_run(tmp_path):
    out = tmp_path / "unet.pt"
    proc = _run_train(["debug=fast_dev_run", *TINY, f"export_path={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Epoch 0: 100%" in proc.stderr + proc.stdout  # the progress bar ran
    net = load_checkpoint(out)
    assert net.config.width == 4 and net.meta["global_step"] == 1
    assert net.meta["config"]["model"]["net"]["variant"] == "tiny"


@pytest.mark.slow
def test_train_py_ddp_spawn_two_cpu_processes(tmp_path):
    out = tmp_path / "unet.pt"
    args = ["trainer=ddp_cpu", *TINY, "trainer.max_steps=2", "trainer.limit_train_batches=2"]
    proc = _run_train([*args, "data.val.num=2", f"export_path={out}"], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert ckpt["PageDataModule"]["stream"]["position"] == 2
    assert load_checkpoint(out).meta["global_step"] == 2


# ---- the CPU model: pulse channel, fixed reading scale, runs that resume ----------------------


def test_crops_carry_the_pulse_target(source):
    stream = CropStream(source, dpi=(60, 60), pages_per_batch=1, crops_per_page=6,
                        crop_size=(64, 64), trace_bias=0.0, pulse_bias=1.0,
                        conventions="standard")  # fmt: skip
    b = next(iter(stream))
    assert b["pulse"].shape == b["mask"].shape and b["pulse"].dtype == torch.uint8
    assert (b["pulse"].flatten(1).sum(1) > 0).all()  # pulse_bias=1: every crop shows a pulse
    assert (b["mask"].flatten(1) > 0).any(1).all()  # ... and the trace that follows it
    assert not (b["pulse"].bool() & (b["mask"] > 0)).any()  # two different targets
    with pytest.raises(ValueError, match="sum <= 1"):
        CropStream(source, trace_bias=0.8, pulse_bias=0.3)


def test_two_channel_net_learns_the_pulse_channel(source):
    dm = tiny_datamodule(source)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model = SegmenterModule({"variant": "tiny", "out_channels": 2}, pulse_weight=1.0)
    loss = model.training_step(batch, 0)
    trace_only = SegmenterModule({"variant": "tiny", "out_channels": 2}, pulse_weight=0.0)
    trace_only.load_state_dict(model.state_dict())
    assert float(loss) > float(trace_only.training_step(batch, 0)) + 1e-3


def test_unet_segmenter_reads_at_the_model_scale(monkeypatch):
    net = build_unet("tiny", px_per_mm=4.0, out_channels=2)
    seen = []
    real = UNet.predict_proba

    def spy(self, image, *args, **kwargs):
        seen.append(tuple(image.shape[-2:]))
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(UNet, "predict_proba", spy)
    seg = dl.UNetSegmenter(net)
    page = torch.rand(1, 3, 160, 240)
    prob = seg(page, px_per_mm=8.0)  # a 200-dpi-like page is read at half its pixels
    assert seen[-1] == (80, 120) and prob.shape == (1, 160, 240)
    assert 0 <= float(prob.min()) and float(prob.max()) <= 1
    seg(page, px_per_mm=None)  # scale unknown: read as it is
    assert seen[-1] == (160, 240)
    # the map is the larger of trace and pulse probability
    both = real(net, page, channel=None)
    assert torch.allclose(seg(page)[0], both[0].amax(0), atol=1e-6)


def test_resume_true_needs_a_last_checkpoint(tmp_path, train_module):
    cfg = _compose(["resume=true", f"callbacks.model_checkpoint.dirpath={tmp_path}"], tmp_path)
    with pytest.raises(SystemExit, match="no last.ckpt"):
        train_module.resume_path(cfg)
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert train_module.resume_path(cfg) == str(tmp_path / "last.ckpt")
    plain = _compose([f"callbacks.model_checkpoint.dirpath={tmp_path}"], tmp_path)
    assert train_module.resume_path(plain) is None


def test_a_resumed_run_gets_its_own_max_time(tmp_path, train_module):
    """Lightning's Timer restores earlier runs' time: the resumed run's budget adds to it."""
    ckpt = tmp_path / "last.ckpt"
    torch.save({"callbacks": {"Timer": {"time_elapsed": {"train": 5000.0}}}}, ckpt)
    cfg = _compose(["+trainer.max_time=00:01:30:00"], tmp_path)
    train_module.per_run_max_time(cfg, str(ckpt))
    assert cfg.trainer.max_time == "00:02:53:20"  # 5400 s + 5000 s
    trainer = pl.Trainer(max_time=cfg.trainer.max_time, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    timer = next(c for c in trainer.callbacks if isinstance(c, pl.callbacks.Timer))
    assert timer._duration == 5400.0 + 5000.0  # the form the Trainer takes (not a DictConfig)
    fresh = _compose(["+trainer.max_time=00:01:30:00"], tmp_path)
    train_module.per_run_max_time(fresh, None)
    assert fresh.trainer.max_time == "00:01:30:00"


class _Fixed(torch.nn.Module):
    """A stand-in model for UNetSegmenter whose probabilities are ``found`` ``[B, 1, H, W]``
    (``None``: zeros everywhere), read at the page's own scale."""

    config = type("Config", (), {"px_per_mm": 0.0})()

    def __init__(self, found: torch.Tensor | None) -> None:
        super().__init__()
        self.found = found

    def predict_proba(self, image, tile=None, channel=None):
        if self.found is None:
            return torch.zeros(image.shape[0], 1, *image.shape[-2:])
        return self.found


def test_refined_map_takes_the_page_ink_near_the_model_trace_only():
    page = torch.ones(1, 3, 80, 160)
    page[:, :, 20:22, 10:60] = 0.0  # a trace stroke the model found (its tip at x 60..70 missed)
    page[:, :, 20:22, 60:70] = 0.0
    page[:, :, 60:62, 100:130] = 0.0  # ink far from any trace (text, a mark)
    found = torch.zeros(1, 1, 80, 160)
    found[..., 18:24, 10:60] = 1.0  # wider than the pen's stroke (an upsampled 4 px/mm map)

    raw = dl.UNetSegmenter(_Fixed(found), refine=False)(page, px_per_mm=4.0)[0]
    refined = dl.UNetSegmenter(_Fixed(found), refine_mm=3.0)(page, px_per_mm=4.0)[0]
    assert float(raw[20:22, 60:70].max()) == 0.0
    assert float(refined[20:22, 61:69].min()) > 0.5  # the missed tip comes back from the ink
    assert float(refined[60:62, 100:130].max()) == 0.0  # ink far from the trace stays out
    # the stroke is the pen's, not the model's wider map: the centre line is read from the ink
    assert float(refined[18:20, 10:60].max()) == 0.0 and float(refined[22:24, 10:60].max()) == 0.0
    assert float(refined[20:22, 10:60].min()) > 0.5


def test_a_stroke_the_model_marks_in_part_is_kept_whole():
    """A flat stretch of trace along a grid line, which the model misses between the QRS
    complexes it marks, stays joined to them; a stroke it does not mark stays out."""
    page = torch.ones(1, 3, 80, 160)
    page[:, :, 20:22, 10:80] = 0.0  # one stroke: the model marks its first 20 of 70 columns
    page[:, :, 60:62, 100:130] = 0.0  # a mark the model does not touch
    found = torch.zeros(1, 1, 80, 160)
    found[..., 20:22, 10:30] = 1.0

    whole = dl.UNetSegmenter(_Fixed(found))(page, px_per_mm=4.0)[0]
    near = dl.UNetSegmenter(_Fixed(found), seed_share=0.5)(page, px_per_mm=4.0)[0]
    assert float(whole[20:22, 10:80].min()) > 0.5
    assert float(whole[60:62, 100:130].max()) == 0.0
    assert float(near[20:22, 40:80].max()) == 0.0  # under the share: only ink near the marks
    assert float(near[20:22, 10:33].min()) > 0.5


def test_a_model_warm_started_with_an_ink_input_computes_what_its_source_did(tmp_path):
    """The ink channel's filters start at zero: the wider model reads a page as the checkpoint
    it started from does, and then learns what the ink adds."""
    from digitizer.segment import UNetSegmenter
    from digitizer.unet import warm_start

    source = _trained_net()
    save_checkpoint(source, tmp_path / "rgb.pt")
    settings = {**source.config.__dict__, "in_channels": 4, "ink_input": True,
                "mean": (0.5,) * 4, "std": (0.25,) * 4}  # fmt: skip
    wide = UNet(**settings)
    assert warm_start(wide, tmp_path / "rgb.pt") == []
    page = torch.rand(1, 3, 96, 128)
    page[:, :, 40:42, 10:120] = 0.0  # ink
    first = wide.state_dict()["encoders.0.0.weight"]
    assert first.shape[1] == 4 and float(first[:, 3].abs().max()) == 0.0
    rgb = UNetSegmenter(source, refine=False)(page, px_per_mm=None)
    with_ink = UNetSegmenter(wide.eval(), refine=False)(page, px_per_mm=None)
    torch.testing.assert_close(with_ink, rgb)
    with pytest.raises(ValueError, match="in_channels 4"):
        UNet(**{**settings, "in_channels": 3, "mean": (0.5,) * 3, "std": (0.25,) * 3})


def test_crops_carry_the_ink_map_as_a_fourth_channel(source):
    stream = CropStream(source, dpi=(90, 90), pages_per_batch=1, crops_per_page=4,
                        crop_size=(96, 96), trace_bias=1.0, ink_input=True)  # fmt: skip
    b = next(iter(stream))
    assert b["image"].shape[1] == 4
    ink, trace = b["image"][:, 3], b["mask"] > 0
    assert 0.0 <= float(ink.min()) and float(ink.max()) <= 1.0
    assert float(ink[trace].mean()) > 0.5 > float(ink[~trace].mean())  # the ink is the trace's
    shuffled = CropStream(source, dpi=(90, 90), pages_per_batch=1, crops_per_page=4,
                          crop_size=(96, 96), trace_bias=1.0, ink_input=True,
                          colour_shuffle=1.0)  # fmt: skip
    s = next(iter(shuffled))
    torch.testing.assert_close(s["image"][:, 3], b["image"][:, 3])  # the same crops, same ink
    torch.testing.assert_close(s["image"][:, :3].sort(dim=1).values,
                               b["image"][:, :3].sort(dim=1).values)  # fmt: skip
    assert not torch.equal(s["image"][:, :3], b["image"][:, :3])  # in another channel order


def test_a_page_the_model_does_not_know_is_read_from_its_ink():
    """A model that marks almost none of a page's ink (a printer it never saw) hands the page
    to the ink map, and says so; one that marks the trace keeps its own reading."""
    page = torch.ones(2, 3, 80, 160)
    page[:, :, 20:22, 10:80] = 0.0  # a trace stroke
    page[:, :, 60:62, 100:130] = 0.0  # a mark
    found = torch.zeros(2, 1, 80, 160)
    found[0, :, 20:22, 10:80] = 1.0  # page 0: the model marks the trace; page 1: nothing

    seg = dl.UNetSegmenter(_Fixed(found))
    out = seg(page, px_per_mm=4.0)
    assert seg.notes[0] == "" and "marked 0.0 % of the page's ink" in seg.notes[1]
    assert float(out[0, 60:62, 100:130].max()) == 0.0  # the model's reading: no mark
    assert float(out[1, 60:62, 100:130].min()) > 0.5 and float(out[1, 20:22, 10:80].min()) > 0.5


def test_the_digitizer_reports_a_page_read_from_its_ink(source):
    from digitizer.pipeline import Digitizer
    from ecgsynth import ECGPageSet

    image = ECGPageSet(1, source, "3x4", "clean", 100.0, seed=5).render_batch([0])["image"][0]
    blind = dl.UNetSegmenter(_Fixed(None))  # marks nothing anywhere
    read = Digitizer(segmenter=blind).digitize(image)
    ink = Digitizer(checkpoint="ink").digitize(image)
    assert any("read from the whole ink map" in w for w in read.warnings)
    np.testing.assert_array_equal(read.signal, ink.signal)


def test_a_page_the_model_partly_marks_is_read_from_its_ink_too(source):
    """A model that marks only the top of a page (under the second-opinion share of its ink,
    above the fallback's): the page is read from the ink map too, and the reading with the more
    confident leads is kept; with ``second_opinion=0`` the model's reading stands alone."""
    from digitizer.pipeline import Digitizer
    from ecgsynth import ECGPageSet

    image = ECGPageSet(1, source, "3x4", "clean", 100.0, seed=5).render_batch([0])["image"][0]
    found = torch.zeros(1, 1, 8, 1)
    found[..., :3, :] = 1.0  # the top third of the page (stretched to its size)
    ink = Digitizer(checkpoint="ink").digitize(image)

    seg = dl.UNetSegmenter(_Fixed(found))
    alone = Digitizer(segmenter=seg, second_opinion=0.0).digitize(image)
    assert 0.1 < seg.pages[0].kept < 0.6, seg.pages[0].kept
    assert alone.confidence.mean() < ink.confidence.mean()
    both = Digitizer(segmenter=seg).digitize(image)
    assert any("kept the reading from the ink map" in w for w in both.warnings), both.warnings
    np.testing.assert_array_equal(both.signal, ink.signal)


@pytest.mark.parametrize("export_from", ["best", "last"])
def test_export_takes_the_best_checkpoint_or_the_final_weights(tmp_path, train_module,
                                                               export_from):  # fmt: skip
    from types import SimpleNamespace

    model = SegmenterModule(net={"variant": "tiny"}, digitize=False)
    best = tmp_path / "best.ckpt"
    saved = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}  # fmt: skip
    torch.save({"state_dict": saved, "global_step": 7}, best)
    final = {k: v.clone() for k, v in model.net.state_dict().items()}
    trainer = SimpleNamespace(
        is_global_zero=True, global_step=9, callback_metrics={},
        checkpoint_callback=SimpleNamespace(best_model_path=str(best), best_model_score=None,
                                            monitor="val/snr_db"),
    )  # fmt: skip
    cfg = _compose(["model=tiny", f"export_from={export_from}"], tmp_path)
    cfg.export_path = str(tmp_path / "unet.pt")
    train_module.export_best(cfg, model, trainer)
    weights = load_checkpoint(tmp_path / "unet.pt").state_dict()
    first = "encoders.0.0.weight"
    expected = 0.5 if export_from == "best" else None
    if expected is None:
        torch.testing.assert_close(weights[first], final[first])
    else:
        assert float(weights[first].min()) == float(weights[first].max()) == expected
