"""Signal receivers of the generation app: a deleted ``GenerationResult`` takes its file with it once the
transaction commits (SPEC 3.4), and only when the path lies inside the media root."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from generation.models import GenerationResult
from generation.results.files import file_delete


@receiver(post_delete, sender=GenerationResult, dispatch_uid="generation.result_file_delete")
def result_file_delete(sender: type[GenerationResult], instance: GenerationResult, using: str, **kwargs: Any) -> None:
    relative = instance.file
    if relative:
        transaction.on_commit(lambda: file_delete(relative), using=using)
