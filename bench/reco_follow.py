"""How the recommendation index follows catalogue writes, in process, on a database ``bench.reco_speed`` seeded:
what a follow costs against a fit of the same catalogue, and how far the followed lexical similarities are from
the fit's.

    .venv/bin/python -m bench.reco_follow --data /tmp/reco10k        # a folder reco_speed seeded (LORAFORGE_DATA_DIR)

Each trial fits the index, gives 5 random adapters a new description, follows (timed), then fits again (timed) and
compares, for each changed adapter and for 20 random others, its lexical similarity to every row: the largest
difference, and how many of its 10 nearest rows are the same. The descriptions get the trial's text, which writes
to the database folder given: use a copy you can spare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXTS = ["with neon cyberpunk glow", "a soft watercolor garden at dusk", "gothic ink knight portrait"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LORAFORGE_DATA_DIR of a seeded database")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        LORAFORGE_DATA_DIR=str(args.data), DJANGO_SETTINGS_MODULE="loraforge.settings", LORAFORGE_LOG_LEVEL="warning"
    )
    import django

    django.setup()
    import numpy as np

    from adapters.models import Adapter
    from recommendations import index as index_module

    index_module.NOVEL_REFIT_SECONDS = float("inf")  # no background fit while measuring
    rng = np.random.default_rng(7)
    for trial in range(args.trials):
        index_module.index_current(force=True)
        changed = list(Adapter.objects.order_by("?")[:5])
        for adapter in changed:
            adapter.description = f"{TEXTS[trial % len(TEXTS)]} {adapter.name}"
            adapter.save()
        started = time.perf_counter()
        followed = index_module.index_current()
        follow_s = time.perf_counter() - started
        started = time.perf_counter()
        fitted = index_module.index_current(force=True)
        fit_s = time.perf_counter() - started
        assert followed.lexical is not None
        assert fitted.lexical is not None
        changed_rows = [fitted.catalogue.position[str(adapter.pk)] for adapter in changed]
        others = rng.choice(len(fitted.catalogue), 20, replace=False).tolist()
        figures = {}
        for name, rows in (("changed", changed_rows), ("others", others)):
            worst, overlaps = 0.0, []
            for row in rows:
                ours, theirs = followed.lexical.row_similarity(row), fitted.lexical.row_similarity(row)
                worst = max(worst, float(np.abs(ours - theirs).max()))
                overlaps.append(len(set(np.argsort(-ours)[:10]) & set(np.argsort(-theirs)[:10])))
            figures[name] = f"max diff {worst:.4f}, 10 nearest shared {min(overlaps)}-{max(overlaps)}"
        print(
            f"trial {trial}: follow {follow_s * 1000:.0f} ms, fit {fit_s * 1000:.0f} ms "
            f"({fit_s / follow_s:.0f}x); changed rows: {figures['changed']}; others: {figures['others']}"
        )


if __name__ == "__main__":
    main()
