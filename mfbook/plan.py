"""What a book run is made of, read by the runner (:mod:`mfbook.run_book`), the site (:mod:`mfbook.site`) and the
benchmarks: the order in which chapters depend on each other, which chapters time their own work, where a run is
recorded, and how long an executed notebook took."""

from __future__ import annotations

import json
from pathlib import Path

# What each chapter reads from the chapters before it: their cached models and heatmaps (a chapter rebuilds whatever is
# missing, so without this order two chapters would build the same thing twice) or their tables. Chapters not listed
# read nothing of another chapter.
CHAPTER_NEEDS: dict[str, tuple[str, ...]] = {
    "04_few_shot_curves": ("03_meta_training",),  # the pre-trained fusion models and the backbone's heatmaps
    "05_rpsm_3d": ("04_few_shot_curves",),  # the 2D methods' fused test heatmaps, finetuned in chapter 4
    "06_trainable_fusion": ("03_meta_training",),  # the warmed-up backbone's confidence maps
    "07_scorecard": ("04_few_shot_curves", "05_rpsm_3d", "06_trainable_fusion"),  # their CSVs (claims.CLAIMS)
    "08_your_cameras": ("03_meta_training",),  # the meta-trained MetaFuse model
    "09_epipolar_oracle": ("04_few_shot_curves",),  # chapter 4's fused test heatmaps (its references)
    "10_metafuse_decided": ("04_few_shot_curves",),  # the backbone's heatmaps of the meta-training and target pools
    "11_backbone_seed": ("04_few_shot_curves",),  # the book seed's NoFusion / NaiveFuse^50 / MetaFuse^50, cached there
}
# Chapters that time their own work (warm-up, meta-training, finetuning, the fusion step; benchmarks.csv reports those
# times): they execute with no other chapter beside them, so another kernel's GPU work does not slow what they measure.
TIMED_CHAPTERS = ("03_meta_training",)  # (chapter 4's finetuning times are measured beside the chapters that wait only
# for chapter 3: with three training seeds its GPU work no longer leaves room in the book's 600 s to run it alone)

# Chapters that never execute beside each other on a GPU, because together they need more memory than one GPU has. On
# the CPU (small smoke chapters, the machine's memory) they may: there the rule would only hold one back (schedule() with
# the smoke durations of results/smoke/book_run.json: 09 would wait for 10, and the book end ~15 s later at --jobs 2,
# ~33 s later at --jobs 3).
CHAPTERS_APART: tuple[tuple[str, str], ...] = (
    # 09 peaked at ~45 GB of GPU memory; 10 holds its float16 paper-regime pool (2 x 13 GB) resident plus its work:
    # executed at the same time they ran out of memory on an 80 GB H100 (2026-12-06)
    ("09_epipolar_oracle", "10_metafuse_decided"),
)

BOOK_RUN = "book_run.json"  # results/<profile>/book_run.json: how the last `run_book execute` ran


def papermill_seconds(notebook: Path) -> float | None:
    """Papermill's duration of an executed notebook, kernel start to the end of its last cell (None where the file or
    the duration is missing)."""
    try:
        return float(json.loads(Path(notebook).read_text())["metadata"]["papermill"]["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
