"""Does the backbone's seed move Fig. 7's paired differences? The book warms up one backbone (chapter 3) and gives
every trained fusion ≥ 3 seeds; its intervals may keep that one backbone only where the backbone's seed moves the
paired differences less than their interval width. This module runs the check on the H36M-like room.

* :func:`seed_check_frames` — the per-frame detections of NoFusion, NaiveFuse^50 and MetaFuse^50 (every fusion seed
  of the profile) under two book seeds: the book's and another one. A book seed draws the backbone's warm-up (its
  weights and its training images), the dome frames MetaFuse is meta-trained on and the target rig's frames, so the
  second run changes the backbone *and* the frames: its shift bounds the backbone's alone from above.
* :func:`seed_check_table` — per compared difference (MetaFuse^50 − NoFusion, NaiveFuse^50 − NoFusion) and book seed:
  the paired difference in JDR points with its 95 % interval (clustered by motion clip and fusion seed,
  :func:`mfcore.claims.fig7.paired_jdr`), and, for the other seed, its shift from the book seed's difference against
  the book seed's interval width (``within_width``: the shift is smaller).
"""

from __future__ import annotations

import pandas as pd

from . import fewshot, motion, targets
from .claims.fig7 import paired_jdr
from .fewshot import Setting

RIG = "h36m"
K_PAPER = 50  # the paper's K of the compared settings (Fig. 7's K = 50)
COMPARED = ("MetaFuse", "NaiveFuse")  # each against NoFusion
TABLE_COLUMNS = ("comparison", "book_seed", "diff_points", "ci_low", "ci_high", "width_points", "shift_points",
                 "within_width", "n")


def seed_check_frames(profile, seed: int, other_seed: int, device, *, progress: bool = True) -> pd.DataFrame:
    """Per-frame detections (joint "mean") on the H36M-like room's test frames of NoFusion and of every method of
    :data:`COMPARED` at the profile's K for the paper's 50, once per fusion seed of ``profile.metafuse``, under the book
    seeds ``seed`` and ``other_seed`` (column ``book_seed``), with each frame's motion clip (``clip``)."""
    if isinstance(other_seed, bool) or not isinstance(other_seed, int) or other_seed < 0 or other_seed == seed:
        raise ValueError(f"other_seed must be a non-negative integer other than the book seed {seed}; got {other_seed!r}")
    k = fewshot.profile_k(K_PAPER, profile)
    settings = [Setting("NoFusion", 0)] + [Setting(m, k, fs) for m in COMPARED for fs in profile.metafuse.fusion_seeds]
    parts = []
    for book_seed in (seed, other_seed):
        rows: list = []
        fewshot.few_shot_curves(profile, book_seed, device, settings=settings, frame_rows=rows, targets=(RIG,),
                                trials=1, progress=progress)
        frames = pd.DataFrame(rows)
        frames = frames[frames.joint == "mean"].reset_index(drop=True)
        clips = motion.clip_labels(targets.target_data(RIG, 0, profile, book_seed, device)["test"]["clip_index"])
        frames["clip"] = [clips[f] for f in frames.frame]
        parts.append(frames.assign(book_seed=book_seed))
    return pd.concat(parts, ignore_index=True)


def seed_check_table(frames: pd.DataFrame, profile, seed: int) -> pd.DataFrame:
    """:data:`TABLE_COLUMNS` from :func:`seed_check_frames`' rows: one row per compared difference and book seed
    (``seed`` first); ``shift_points`` and ``within_width`` only on the other seed's rows."""
    k = fewshot.profile_k(K_PAPER, profile)
    book_seeds = [seed] + [s for s in dict.fromkeys(frames.book_seed) if s != seed]
    rows = []
    for method in COMPARED:
        base = None
        for book_seed in book_seeds:
            part = frames[frames.book_seed == book_seed]
            iv, _, _ = paired_jdr(part, RIG, (method, k), ("NoFusion", 0), seed=seed)
            row = dict(comparison=f"{method}^{K_PAPER} − NoFusion", book_seed=book_seed, diff_points=iv.diff,
                       ci_low=iv.low, ci_high=iv.high, width_points=iv.high - iv.low, shift_points=None,
                       within_width=None, n=iv.n)
            if base is None:
                base = row
            else:
                row["shift_points"] = iv.diff - base["diff_points"]
                row["within_width"] = bool(abs(row["shift_points"]) < base["width_points"])
            rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
