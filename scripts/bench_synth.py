"""Benchmark page synthesis (render + full ground truth): pages per second.

    python scripts/bench_synth.py          # table: dpi 100/200 x batch 1/8/32, cpu (+cuda)
    python scripts/bench_synth.py --device cpu --dpi 200 --preset clean --batch 8 --json
    python scripts/bench_synth.py --mode dataset --batch 8 --dpi 200   # through DataLoader

``--mode render`` times ``Renderer.render`` on signals drawn beforehand (spec sampling +
rendering + ground truth) and the preset's distortion pipeline (``--stages`` lists each stage's
time per page, slowest first); ``--mode dataset`` times ``DataLoader(ECGImageDataset(...),
batch_size=None)`` end to end (record loading and windowing included), so the two together show
what the data pipeline adds over the bare renderer.

Each configuration appends one JSON line (device, versions, resolution, preset, batch, torch
threads, whether ``THP_MEM_ALLOC_ENABLE`` was set, images_per_s, s_per_image) to ``--log``
(default ``bench_results.jsonl``). Signals are real embedded records. ``--threads N`` sets
torch's CPU threads (pin the process with ``taskset`` to share a machine fairly).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecgsynth.dataset import ECGImageDataset
from ecgsynth.distort import PRESETS, build_pipeline
from ecgsynth.layout import page_size_px
from ecgsynth.render import Renderer
from ecgsynth.sources import default_source
from ecgsynth.spec import sample_page_spec


def bench(mode: str, device: str, dpi: float, preset: str, batch: int, seconds: float,
          layout: str) -> dict:  # fmt: skip
    """Time repeated batches for about ``seconds``; return the result record."""
    source = default_source(synthetic=False)
    rng = np.random.default_rng(0)
    stages: dict[str, float] = {}
    if mode == "render":
        pool = np.stack([source.sample(rng).signal for _ in range(16)])
        renderer = Renderer(device)
        pipeline = build_pipeline(preset)

        def make() -> dict:
            start = time.perf_counter()
            specs = [sample_page_spec(rng, layout=layout, dpi=dpi) for _ in range(batch)]
            signal = torch.as_tensor(pool[rng.integers(0, len(pool), batch)], device=device)
            out = renderer.render(signal, source.fs, specs)
            _sync(out)
            stages["render"] = stages.get("render", 0.0) + time.perf_counter() - start
            if pipeline.empty:
                return out
            start = time.perf_counter()
            gens = [torch.Generator().manual_seed(int(s)) for s in rng.integers(2**62, size=batch)]
            params = pipeline.sample(out["image"].shape[-2], out["image"].shape[-1], gens, device)
            stages["sample"] = stages.get("sample", 0.0) + time.perf_counter() - start
            return pipeline.apply(out, params, timings=stages)
    else:
        ds = ECGImageDataset(source, layout, preset, dpi, batch_size=batch, device=device)
        batches = iter(DataLoader(ds, batch_size=None))

        def make() -> dict:
            return next(batches)

    def step() -> None:
        _sync(make())

    step()  # warm-up: caches, allocator, kernels
    stages.clear()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    per_batch = float(np.median(times))
    h, w = page_size_px("letter", dpi)
    return {
        "bench": "synth",
        "mode": mode,
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else
        f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "dpi": dpi,
        "height": h,
        "width": w,
        "preset": preset,
        "layout": layout,
        "batch": batch,
        "images_per_s": round(batch / per_batch, 2),
        "s_per_image": round(per_batch / batch, 4),
        "threads": torch.get_num_threads(),
        "thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE") == "1",
        "batches_timed": len(times),
        "stage_s_per_image": {k: round(v / (len(times) * batch), 4) for k, v in stages.items()},
    }  # fmt: skip


def _sync(batch: dict) -> None:
    if batch["image"].is_cuda:
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", action="append", help="cpu, cuda (repeatable); default: all")
    parser.add_argument("--dpi", type=float, action="append", help="default: 100 and 200")
    parser.add_argument("--batch", type=int, action="append", help="default: 1, 8 and 32")
    parser.add_argument("--preset", choices=PRESETS, default="clean")
    parser.add_argument("--mode", choices=["render", "dataset"], default="render")
    parser.add_argument("--layout", default="random")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per configuration")
    parser.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    parser.add_argument("--stages", action="store_true", help="print per-stage ms/page")
    parser.add_argument("--log", default="bench_results.jsonl", help="append here ('' = no)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if not args.json:
        print(f"{'device':<40} {'dpi':>5} {'batch':>5} {'pages/s':>9} {'s/page':>8}")
    for device in devices:
        for dpi in args.dpi or [100.0, 200.0]:
            for batch in args.batch or [1, 8, 32]:
                r = bench(args.mode, device, dpi, args.preset, batch, args.seconds, args.layout)
                if args.json:
                    print(json.dumps(r))
                else:
                    print(f"{r['device']:<40} {dpi:>5.0f} {batch:>5} {r['images_per_s']:>9.2f} "
                          f"{r['s_per_image']:>8.4f}")  # fmt: skip
                    if args.stages and r["stage_s_per_image"]:
                        slowest = sorted(r["stage_s_per_image"].items(), key=lambda kv: -kv[1])
                        for stage, sec in slowest:
                            print(f"    {stage:<34} {sec * 1000:8.1f} ms/page")
                if args.log:
                    with open(args.log, "a") as f:
                        f.write(json.dumps(r) + "\n")
    if "cpu" in devices and not args.json and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":
        print("note: on Linux, THP_MEM_ALLOC_ENABLE=1 (set before Python starts) lets PyTorch back "
              "large CPU tensors with huge pages: fewer page faults, faster pages")  # fmt: skip


if __name__ == "__main__":
    main()
