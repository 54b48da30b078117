"""System status (SPEC 5.10, 6.9): one module per probe group, assembled with its warnings in ``assembler``."""

from __future__ import annotations

from analytics.status.assembler import status_overview, system_status

__all__ = ["status_overview", "system_status"]
