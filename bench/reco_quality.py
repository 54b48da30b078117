"""Recommendation quality: precision@5 of ``similar`` and ``for-prompt`` on a committed evaluation set.

``bench/data/reco_eval.json`` holds 256 adapters in 16 style families whose members share meaning through
paraphrase and synonyms rather than identical words (with misleading shared words across families), and 96
held-out prompts written differently from the adapters' text. Relevant = same family. The adapters are
inserted into a fresh SQLite database, embedded with the packaged all-MiniLM-L6-v2 on CPU, then every adapter
is a ``similar`` query and every prompt a ``for-prompt`` query, through the same services as the API, for
lexical only, semantic only and hybrid weights. Finally one round of negative feedback: each non-relevant item
of the hybrid top 5 gets ``negative`` feedback in its session, and the query is asked again.

    .venv/bin/python -m bench.reco_quality                   # the report
    .venv/bin/python -m bench.reco_quality --sweep           # also the semantic-weight sweep
    LORAFORGE_EMBEDDING_MODEL=/path/to/model .venv/bin/python -m bench.reco_quality   # another sentence model
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data" / "reco_eval.json"
K = 5
FAMILIES = {"SD 1.5": "sd1", "SDXL 1.0": "sdxl", "Pony": "sdxl", "Flux.1 D": "flux1"}


def setup() -> None:
    os.environ.update(
        LORAFORGE_DATA_DIR=tempfile.mkdtemp(prefix="loraforge-reco-quality-"),
        LORAFORGE_LOG_LEVEL="warning",
        LORAFORGE_EMBEDDED_WORKER="off",
        DJANGO_SETTINGS_MODULE="loraforge.settings",
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(dataset: dict[str, Any]) -> dict[str, str]:
    """Insert the adapters; answer ``{adapter id: family}``."""
    from adapters.models import Adapter

    rows = [
        Adapter(
            name=item["name"],
            sdnext_name=item["sdnext_name"],
            description=item["description"],
            tags=item["tags"],
            trained_words=item["trained_words"],
            base_model=item["base_model"],
            base_family=FAMILIES.get(item["base_model"], "unknown"),
            file_path=f"/srv/loras/{item['sdnext_name']}.safetensors",
            hash_status="done",
        )
        for item in dataset["adapters"]
    ]
    Adapter.objects.bulk_create(rows)
    return {str(row.pk): item["family"] for row, item in zip(rows, dataset["adapters"], strict=True)}


def precision(ids: list[str], family: str, family_of: dict[str, str]) -> float:
    """Precision@5: the share of the first five that belong to ``family``."""
    return sum(1 for adapter_id in ids[:K] if family_of[adapter_id] == family) / K


def with_weights(semantic: float, lexical: float) -> Any:
    from django.test import override_settings

    return override_settings(LORAFORGE_RECO_WEIGHTS={"semantic": semantic, "lexical": lexical})


def similar_precision(family_of: dict[str, str], *, diversify: bool = True) -> float:
    from adapters.models import Adapter
    from recommendations.services.recommend import recommend_similar

    scores = []
    for adapter in Adapter.objects.all():
        response = recommend_similar(
            adapter=adapter, limit=K, similarity_threshold=0.0, same_base_only=False, diversify_results=diversify,
            record=False,
        )  # fmt: skip
        ids = [item["lora_id"] for item in response["recommendations"]]
        scores.append(precision(ids, family_of[str(adapter.pk)], family_of))
    return statistics.fmean(scores)


def prompt_precision(family_of: dict[str, str], prompts: list[dict[str, str]]) -> float:
    from recommendations.services.recommend import recommend_for_prompt

    scores = []
    for prompt in prompts:
        response = recommend_for_prompt(prompt=prompt["prompt"], limit=K)
        ids = [item["lora_id"] for item in response["recommendations"]]
        scores.append(precision(ids, prompt["family"], family_of))
    return statistics.fmean(scores)


def negative_feedback_round(family_of: dict[str, str], prompts: list[dict[str, str]]) -> dict[str, float]:
    """Precision@5 before and after one round of negative feedback on each query's non-relevant items."""
    from django.db import transaction

    from adapters.models import Adapter
    from recommendations.services.recommend import recommend_for_prompt, recommend_similar
    from recommendations.services.user_data import feedback_create

    def round_trip(ask: Callable[[], dict[str, Any]], family: str) -> tuple[float, float]:
        """One query's before/after; its feedback is rolled back, so each query starts from no feedback."""
        with transaction.atomic():
            first = ask()
            ids = [item["lora_id"] for item in first["recommendations"]]
            for adapter_id in ids[:K]:
                if family_of[adapter_id] != family:
                    feedback_create(session_id=first["session_id"], adapter_id=adapter_id, feedback_type="negative")
            second = [item["lora_id"] for item in ask()["recommendations"]]
            transaction.set_rollback(True)
        return precision(ids, family, family_of), precision(second, family, family_of)

    def similar_to(adapter: Any) -> Callable[[], dict[str, Any]]:
        return lambda: recommend_similar(adapter=adapter, limit=K, similarity_threshold=0.0, same_base_only=False)

    def for_prompt(text: str) -> Callable[[], dict[str, Any]]:
        return lambda: recommend_for_prompt(prompt=text, limit=K)

    similar = [round_trip(similar_to(adapter), family_of[str(adapter.pk)]) for adapter in Adapter.objects.all()]
    prompt = [round_trip(for_prompt(item["prompt"]), item["family"]) for item in prompts]
    return {
        "similar_before": statistics.fmean(pair[0] for pair in similar),
        "similar_after": statistics.fmean(pair[1] for pair in similar),
        "prompt_before": statistics.fmean(pair[0] for pair in prompt),
        "prompt_after": statistics.fmean(pair[1] for pair in prompt),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="also sweep the semantic weight 0.0..1.0")
    args = parser.parse_args()
    dataset = json.loads(DATA.read_text())
    setup()
    from adapters.models import Adapter
    from recommendations.services.embeddings import embeddings_compute

    family_of = load(dataset)
    prompts = dataset["prompts"]
    started = time.perf_counter()
    report = embeddings_compute(adapter_ids=[str(pk) for pk in Adapter.objects.values_list("pk", flat=True)])
    from recommendations.encoder import model_name

    print(
        f"{len(family_of)} adapters in {len(dataset['families'])} families, {len(prompts)} prompts; "
        f"embedded {report.processed_count} in {time.perf_counter() - started:.1f} s "
        f"({model_name() or 'no model'}, {report.device})"
    )
    from recommendations.weights import weights_in_force

    default = weights_in_force()
    variants = {"lexical only": (0.0, 1.0), "semantic only": (1.0, 0.0)}
    variants[f"hybrid (default {default.semantic:g}/{default.lexical:g})"] = (default.semantic, default.lexical)
    if args.sweep:
        variants |= {f"hybrid {ws:.1f}/{1 - ws:.1f}": (ws, 1 - ws) for ws in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
    print(f"\n{'weights (semantic/lexical)':32} {'similar P@5':>12} {'(no diversify)':>15} {'for-prompt P@5':>15}")
    for label, (ws, wl) in variants.items():
        with with_weights(ws, wl):
            row = (similar_precision(family_of), similar_precision(family_of, diversify=False))
            prompt = prompt_precision(family_of, prompts)
        print(f"{label:32} {row[0]:12.3f} {row[1]:15.3f} {prompt:15.3f}")
    feedback = negative_feedback_round(family_of, prompts)
    print(
        "\none round of negative feedback (default weights): "
        f"similar {feedback['similar_before']:.3f} -> {feedback['similar_after']:.3f}, "
        f"for-prompt {feedback['prompt_before']:.3f} -> {feedback['prompt_after']:.3f}"
    )


if __name__ == "__main__":
    main()
