"""What every sentence encoder shares: its vectors' type and the error of a model that is not installed."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EncoderUnavailable(RuntimeError):
    """The encoder's model files are not installed."""
