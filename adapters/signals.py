"""Signals the adapters app sends; higher apps connect to them (the adapters app imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent (sender=Adapter) after a non-dry-run scan, a one-file rescan, ``POST /adapters`` or a PATCH of a text field, with
# ``adapter_ids``: the ids (str) of the adapters created, changed, moved or updated. The recommendations app
# queues embeddings from it.
adapters_imported = Signal()
