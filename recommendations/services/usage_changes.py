"""Pruning the log of changed jobs the co-usage triggers keep (``UsageChange``): it holds the newest
``USAGE_CHANGES_KEEP`` rows, enough for a history kept in memory to catch up after a busy hour; one that lags further
sees ``UsageState.pruned_through`` past its version and is loaded again."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from recommendations.models import UsageChange, UsageState

USAGE_CHANGES_KEEP = 20_000


def usage_changes_prune(*, keep: int = USAGE_CHANGES_KEEP) -> int:
    """Delete all but the newest ``keep`` rows of the log; returns how many. Holds the state row meanwhile, as the
    triggers do, so no change is logged between the last version pruned and the mark."""
    with transaction.atomic():
        state = UsageState.objects.select_for_update().filter(pk=1).first()
        newest = UsageChange.objects.aggregate(newest=Max("id"))["newest"]
        if state is None or newest is None or newest <= keep:
            return 0
        old = UsageChange.objects.filter(id__lte=newest - keep)
        through = old.aggregate(through=Max("version"))["through"]
        if through is None:
            return 0
        if through > state.pruned_through:
            state.pruned_through = through
            state.save(update_fields=["pruned_through"])
        deleted, _ = old.delete()
        return deleted
