"""What the recommendations app does when the adapters app announces written adapters (``adapters_imported``):
a debounced embeddings sweep once the transaction commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def adapters_written(sender: Any, adapter_ids: list[str] | None = None, **kwargs: Any) -> None:
    from recommendations.services.embeddings import embeddings_sweep_schedule

    if adapter_ids:
        transaction.on_commit(embeddings_sweep_schedule)
