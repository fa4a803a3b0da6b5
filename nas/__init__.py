"""nas: hardware-aware neural architecture search for mobile CNNs."""

from __future__ import annotations

__version__ = "0.1.0"
