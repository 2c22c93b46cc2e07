"""The papers' numbers the claims compare with, and the margins stated from them before the results they decide: a
difference must reach :data:`~mfcore.claims.units.MARGIN_SHARE` (half) of the paper's effect to reproduce it; where the
paper prints no number for a difference it draws, half the smallest difference it prints in that metric."""

from __future__ import annotations

from .units import Effect, printed, unprinted

PAPER_MPJPE_MM: tuple[tuple[str, str, int, float, str], ...] = (  # (rig, method, paper's K, paper MPJPE mm, source)
    ("h36m", "MetaFuse", 50, 32.7, "MetaFuse Table 2"), ("h36m", "MetaFuse", 100, 31.3, "MetaFuse Table 2"),
    ("h36m", "MetaFuse", 500, 29.3, "MetaFuse Table 2"),
    ("totalcapture", "NoFusion", 0, 41.2, "MetaFuse Table 3 (mean)"),
    ("totalcapture", "MetaFuse", 500, 32.4, "MetaFuse Table 3 (mean)"),
    ("dome_heldout", "NoFusion", 0, 40.47, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "MetaFuse", 50, 37.27, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "MetaFuse", 200, 31.78, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "NaiveFuse", 50, 43.39, "MetaFuse Sec. 5.4"),
    ("dome_heldout", "NaiveFuse", 200, 35.60, "MetaFuse Sec. 5.4"))
TABLE5_MM = {"ImageOnly": 124.13, "CMOnly": 79.28, "EarlyFusion": 76.41, "LateFusion": 74.12,
             "TrainableFusion": 69.73}  # Tekin et al. Table 5, 3D pose error (mm) on Human3.6m


def paper_mpjpe_mm(rig: str, method: str, k: int = 0) -> float:
    """The paper's MPJPE (mm) of a setting of :data:`PAPER_MPJPE_MM` (``k``: the paper's K; 0 for NoFusion)."""
    for r, m, pk, value, _ in PAPER_MPJPE_MM:
        if (r, m, pk) == (rig, method, k):
            return value
    raise KeyError(f"no paper MPJPE for rig={rig!r} method={method!r} K={k!r}; known: "
                   f"{[(r, m, pk) for r, m, pk, _, _ in PAPER_MPJPE_MM]}")



def label(method, k) -> str:
    """A setting's name as the tables write it: ``MetaFuse^50``, ``NoFusion``."""
    return method if not k else f"{method}^{k}"


def mm_effect(rig: str, higher: tuple[str, int], lower: tuple[str, int]) -> Effect:
    """The paper's effect lower − higher (mm) of two settings of :data:`PAPER_MPJPE_MM` (``(method, K)``)."""
    src = next(s for r, m, k, _, s in PAPER_MPJPE_MM if (r, m, k) == (rig, *lower))
    return printed(paper_mpjpe_mm(rig, *higher), paper_mpjpe_mm(rig, *lower),
                   f"{src}, {label(*higher)} → {label(*lower)} (mm)")


SMALLEST_JDR = printed(87.7, 89.3, "MetaFuse Sec. 5.2, NaiveFuseMeta mean JDR, K = 50 → 100 (%)")  # +1.6 points
UNPRINTED_JDR = unprinted(SMALLEST_JDR, "drawn in Fig. 7")  # margin 0.8 points
SMALLEST_MM = printed(32.7, 31.3, "MetaFuse Table 2, MetaFuse^50 → MetaFuse^100 (mm)")  # −1.4 mm
UNPRINTED_MM = unprinted(SMALLEST_MM, "stated in words")  # margin 0.7 mm
