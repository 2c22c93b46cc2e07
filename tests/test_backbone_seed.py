"""mfcore.backbone_seed: the check that the backbone's seed moves Fig. 7's paired differences less than their width."""

import numpy as np
import pandas as pd
import pytest

from mfcore import backbone_seed, fewshot, profiles


def _frames(prof, meta_hits: dict, naive_hits: int = 5) -> pd.DataFrame:
    """Detections out of 10 on 24 frames of 4 clips: NoFusion 5 + frame % 3, MetaFuse meta_hits[book seed] more."""
    k = fewshot.profile_k(50, prof)
    rows = []
    for book_seed, extra in meta_hits.items():
        for f in range(24):
            clip = f"clip{f % 4}"
            base = 5 + f % 3
            rows.append(dict(book_seed=book_seed, rig="h36m", method="NoFusion", k=0, seed=None, trial=0, frame=f,
                             joint="mean", detected=base, counted=10, clip=clip))
            for fs in prof.metafuse.fusion_seeds:
                rows.append(dict(book_seed=book_seed, rig="h36m", method="MetaFuse", k=k, seed=fs, trial=0, frame=f,
                                 joint="mean", detected=min(10, base + extra + (f + fs) % 2), counted=10, clip=clip))
                rows.append(dict(book_seed=book_seed, rig="h36m", method="NaiveFuse", k=k, seed=fs, trial=0,
                                 frame=f, joint="mean", detected=naive_hits, counted=10, clip=clip))
    return pd.DataFrame(rows)


def test_the_table_reads_each_seeds_paired_difference_and_the_shift_against_the_book_seeds_width():
    prof = profiles.get_profile("smoke")
    frames = _frames(prof, {0: 1, 7: 3})  # MetaFuse's gain moves by 2 of 10 joints: far beyond the width
    table = backbone_seed.seed_check_table(frames, prof, seed=0)
    assert list(table.columns) == list(backbone_seed.TABLE_COLUMNS)
    assert table.book_seed.tolist() == [0, 7, 0, 7]
    meta = table[table.comparison == "MetaFuse^50 − NoFusion"].set_index("book_seed")
    by_hand = {s: 100 * (frames[(frames.book_seed == s) & (frames.method == "MetaFuse")].detected.mean()
                         - frames[(frames.book_seed == s) & (frames.method == "NoFusion")].detected.mean()) / 10
               for s in (0, 7)}
    assert meta.diff_points[0] == pytest.approx(by_hand[0]) and meta.diff_points[7] == pytest.approx(by_hand[7])
    assert meta.shift_points[7] == pytest.approx(by_hand[7] - by_hand[0]) and np.isnan(meta.shift_points[0])
    assert meta.within_width[7] is False and abs(meta.shift_points[7]) > meta.width_points[0]
    assert (meta.ci_low <= meta.diff_points).all() and (meta.diff_points <= meta.ci_high).all()
    naive = table[table.comparison == "NaiveFuse^50 − NoFusion"].set_index("book_seed")
    assert naive.shift_points[7] == pytest.approx(0.0) and naive.width_points[0] > 0 and naive.within_width[7] is True


def test_the_other_seed_must_differ_from_the_book_seed():
    prof = profiles.get_profile("smoke")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="other_seed must be"):
            backbone_seed.seed_check_frames(prof, 0, bad, "cpu")
