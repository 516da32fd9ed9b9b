"""Hash the pages of the classic (``standard``) path, to show a change keeps them bit-identical.

    PYTHONPATH=OLD_TREE python scripts/hash_standard_pages.py > old.json
    PYTHONPATH=NEW_TREE python scripts/hash_standard_pages.py > new.json
    diff old.json new.json   # no output: identical specs, pixels, masks, points and page sets

Covers ``PageSpec()`` of every layout, ``sample_page_spec`` (fresh and shared generators; with
``conventions="standard"`` where the tree knows it) and ``ECGPageSet`` batches (the evaluation
set's path), at 100 dpi on deterministic ECG-like signals.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import numpy as np
import torch

from ecgsynth.dataset import ECGPageSet
from ecgsynth.layout import LAYOUTS
from ecgsynth.render import Renderer
from ecgsynth.sources import ArraySource
from ecgsynth.spec import PageSpec, sample_page_spec


def ecg_like(batch: int, seed: int, seconds: float = 10.0, fs: int = 500) -> np.ndarray:
    """Deterministic ECG-shaped signals ``[batch, 12, T]`` in mV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    out = np.zeros((batch, 12, t.size), np.float32)
    for b in range(batch):
        rr = rng.uniform(0.6, 1.1)
        for lead in range(12):
            beat = np.mod(t - rng.uniform(0, rr), rr)
            out[b, lead] = rng.uniform(-1.8, 1.8) * np.exp(-0.5 * ((beat - 0.2) / 0.012) ** 2)
    return out


def digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.contiguous().cpu().numpy().tobytes()).hexdigest()[:12]


def main() -> None:
    params = inspect.signature(sample_page_spec).parameters
    kw = {"conventions": "standard"} if "conventions" in params else {}
    specs = [PageSpec(layout=n, dpi=100) for n in sorted(LAYOUTS)]
    specs += [sample_page_spec(np.random.default_rng(i), dpi=100, **kw) for i in range(8)]
    rng = np.random.default_rng(5)
    specs += [sample_page_spec(rng, layout=n, dpi=100, **kw) for n in sorted(LAYOUTS)]
    out = {}
    for i, s in enumerate(specs):  # fields both trees have
        d = s.to_dict()
        d.pop("convention", None)
        d["style"].pop("label_face", None)
        out[f"spec{i}"] = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
    batch = Renderer().render(ecg_like(len(specs), 2), 500, specs)
    for key in ("image", "mask_bits", "points", "signal_mask", "boxes"):
        out[key] = digest(batch[key])
    source = ArraySource(ecg_like(4, 3, seconds=12.0), fs=500)
    pages = ECGPageSet(3, source, layout="3x4", preset="medium", dpi=100, seed=2024)
    batch = pages.render_batch([0, 1, 2])
    for key in ("image", "mask_bits", "points", "signal_mask"):
        out[f"set_{key}"] = digest(batch[key])
    batch = ECGPageSet(2, source, layout="random", dpi=100, seed=7).render_batch([0, 1])
    out["random_layout_set_image"] = digest(batch["image"])
    print(json.dumps(out, indent=0))


if __name__ == "__main__":
    main()
