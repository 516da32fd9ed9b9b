"""Named presets and the config format for composing your own pipeline.

A config is a dict with up to three keys (all optional)::

    {"page":   [{"name": "Stains", "p": 0.3, "strength": 0.5, ...effect fields}, ...],
     "warp":   {"rotation_deg": 3.0, "perspective": 0.0, ...GeometricWarp fields} or None,
     "camera": [{"name": "GaussianNoise", "p": 1.0, "strength": 0.3}, ...]}

``name`` is a class name from :data:`EFFECTS`; the other keys are that class's dataclass fields
(``p``: probability per page, ``strength``: 0..1). Hydra configs map onto this directly.

* ``clean``: no distortion.
* ``medium``: a flatbed scan of handled paper: slight tilt and offset, a fold or two, paper
  texture, light stains and notes, mild blur, noise and JPEG.
* ``heavy``: a phone photo of a worn, stained page: perspective, rotation, curl and folds,
  stains and coffee rings, shadows and uneven light, motion/defocus blur, sensor noise, colour
  cast, strong JPEG, sometimes a photocopy look or moiré.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import overlays, paper, sensor
from .base import Distortion
from .geometric import GeometricWarp, LowResolution
from .pipeline import Pipeline

EFFECTS: dict[str, type[Distortion]] = {
    cls.__name__: cls
    for module in (paper, overlays, sensor)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, Distortion) and cls is not Distortion
}
EFFECTS["LowResolution"] = LowResolution


def _fx(name: str, p: float, strength: float, **fields: Any) -> dict:
    return {"name": name, "p": p, "strength": strength, **fields}


PRESET_CONFIGS: dict[str, dict] = {
    "clean": {},
    "medium": {
        "page": [
            _fx("PaperTexture", 1.0, 0.4),
            _fx("Wrinkles", 0.5, 0.3),
            _fx("CreaseShading", 0.4, 0.4),
            _fx("Stains", 0.3, 0.4),
            _fx("Fading", 0.3, 0.3),
            _fx("HandwrittenNotes", 0.4, 0.5),
            _fx("Stamps", 0.15, 0.5),
            _fx("PrintedText", 0.3, 0.5),
        ],
        "warp": {
            "rotation_deg": 3.0,
            "scale": (0.95, 1.05),
            "translate": 0.02,
            "folds": 1,
            "fold_shift": 0.002,
            "strength": 1.0,
            "p": 0.9,
        },  # fmt: skip
        "camera": [
            _fx("UnevenLighting", 0.5, 0.3),
            _fx("LowResolution", 0.3, 0.5),
            _fx("DefocusBlur", 0.3, 0.2),
            _fx("GaussianNoise", 0.7, 0.3),
            _fx("JPEG", 0.5, 0.4),
        ],
    },
    "heavy": {
        "page": [
            _fx("PaperTexture", 1.0, 0.7),
            _fx("Wrinkles", 0.8, 0.7),
            _fx("CreaseShading", 0.7, 0.7),
            _fx("Stains", 0.6, 0.7),
            _fx("CoffeeRings", 0.4, 0.7),
            _fx("Fading", 0.5, 0.6),
            _fx("BleedThrough", 0.3, 0.5),
            _fx("HandwrittenNotes", 0.6, 0.7),
            _fx("Stamps", 0.3, 0.7),
            _fx("Barcode", 0.2, 0.7),
            _fx("PrintedText", 0.4, 0.7),
            _fx("Photocopy", 0.1, 0.6),
        ],
        "warp": {
            "rotation_deg": 10.0,
            "perspective": 0.06,
            "scale": (0.85, 1.1),
            "translate": 0.04,
            "folds": 2,
            "fold_shift": 0.004,
            "curl": 0.03,
            "waviness": 0.003,
            "strength": 1.0,
            "p": 1.0,
        },  # fmt: skip
        "camera": [
            _fx("Shadow", 0.5, 0.6),
            _fx("UnevenLighting", 0.8, 0.7),
            _fx("MotionBlur", 0.3, 0.5),
            _fx("DefocusBlur", 0.4, 0.5),
            _fx("Moire", 0.15, 0.5),
            _fx("ColorTemperature", 0.7, 0.6),
            _fx("BrightnessContrastGamma", 0.8, 0.6),
            _fx("ShotNoise", 0.7, 0.6),
            _fx("GaussianNoise", 0.7, 0.5),
            _fx("JPEG", 0.9, 0.7),
        ],
    },
}
PRESETS: tuple[str, ...] = tuple(PRESET_CONFIGS)


def build_pipeline(preset: str | dict) -> Pipeline:
    """A :class:`Pipeline` from a preset name or a config dict (see the module docstring)."""
    if isinstance(preset, str):
        if preset not in PRESET_CONFIGS:
            raise ValueError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
        preset = PRESET_CONFIGS[preset]
    unknown = set(preset) - {"page", "warp", "camera"}
    if unknown:
        raise ValueError(f"pipeline config keys are page, warp, camera; got {sorted(unknown)}")
    warp = preset.get("warp")
    return Pipeline(
        page=[_effect(c) for c in preset.get("page", [])],
        warp=None if warp is None else _construct(GeometricWarp, dict(warp)),
        camera=[_effect(c) for c in preset.get("camera", [])],
    )


def _effect(config: dict) -> Distortion:
    config = dict(config)
    name = config.pop("name", None)
    if name not in EFFECTS:
        raise ValueError(f"unknown effect {name!r}; available: {', '.join(sorted(EFFECTS))}")
    return _construct(EFFECTS[name], config)


def _construct(cls: type, fields: dict) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    bad = set(fields) - known
    if bad:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(bad)}; fields: {sorted(known)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return cls(**converted)
