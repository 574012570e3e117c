"""Social-prescribing matcher: ranks a local catalogue of activities for one person."""

from __future__ import annotations

__version__ = "0.1.0"
