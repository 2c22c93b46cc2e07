"""One entry point for every 3D estimator of the book (:data:`ESTIMATORS`), frames in batches of a given size."""

from __future__ import annotations

import torch

from .limbs import LimbLengthStats
from .recursive import rpsm
from .triangulation import triangulate_argmax, triangulate_ransac

Tensor = torch.Tensor


ESTIMATORS = ("triangulation", "weighted_triangulation", "ransac", "psm", "rpsm")


def estimate_3d(estimator: str, heatmaps: Tensor, projections_hm: Tensor, stats: LimbLengthStats | None = None,
                sizes=None, batch_frames: int | None = None) -> Tensor:
    """One of :data:`ESTIMATORS` on (B, V, J, h, w) heatmaps → (B, J, 3) metres; ``sizes`` is ``profile.pictorial``.

    ``stats`` and ``sizes`` are needed by "psm" and "rpsm" only. Frames go through in calls of ``batch_frames``
    (default ``sizes.batch_frames``, else all at once); the result does not depend on it.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if estimator in ("psm", "rpsm") and (stats is None or sizes is None):
        raise ValueError(f"estimator {estimator!r} needs limb-length stats and the profile's pictorial sizes")
    batch = batch_frames or (sizes.batch_frames if sizes is not None else heatmaps.shape[0])
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch_frames must be a positive int, got {batch_frames!r}")

    def one(hm: Tensor) -> Tensor:
        if estimator == "triangulation":
            return triangulate_argmax(hm, projections_hm)
        if estimator == "weighted_triangulation":
            return triangulate_argmax(hm, projections_hm, weighted=True)
        if estimator == "ransac":
            return triangulate_ransac(hm, projections_hm)
        stages = sizes.rpsm_stages if estimator == "rpsm" else 0
        return rpsm(hm, projections_hm, stats, sizes.grid_bins, sizes.cube_size_mm, stages, sizes.rpsm_bins,
                    antialias=sizes.antialias)

    return torch.cat([one(heatmaps[i:i + batch]) for i in range(0, heatmaps.shape[0], batch)])
