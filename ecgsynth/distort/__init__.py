"""Distortions that make clean pages look scanned or photographed, every target kept exact.

``build_pipeline("medium")`` (or ``"clean"``, ``"heavy"``, or a config dict) returns a
:class:`Pipeline`; ``pipeline(batch, generators)`` distorts a rendered batch. See
:mod:`ecgsynth.distort.pipeline` for the stages and :mod:`ecgsynth.distort.presets` for the
presets and the config format.
"""

from .base import Distortion
from .geometric import GeometricWarp
from .pipeline import Pipeline
from .presets import EFFECTS, PRESETS, build_pipeline

__all__ = ["EFFECTS", "PRESETS", "Distortion", "GeometricWarp", "Pipeline", "build_pipeline"]
