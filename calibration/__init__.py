"""Calibration: per-track neutral baseline and temperature scaling of the apex classifier.

Pure numpy. ``calibration.neutral`` follows a face's resting shape without absorbing held
expressions; ``calibration.temperature`` fits one temperature per apex sigmoid.
"""

from calibration.neutral import NeutralBaseline, NeutralConfig
from calibration.temperature import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)

__all__ = [
    "NeutralBaseline",
    "NeutralConfig",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
]
