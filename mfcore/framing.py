"""How the person fills the network's views: the numbers of chapter 2's ``framing.csv`` (person extent, millimetres
per heatmap pixel, the JDR threshold in mm and as a share of body height), from labels only (no images). Apart from
:mod:`mfcore.data` so that the backbone's cache key (which covers ``data``) does not cover the JDR's code."""

from __future__ import annotations

import torch

from . import metrics, motion, skeleton
from .geometry import depth, project
from .profiles import Profile
from .studio import get_rig


def framing_statistics(rigs, split: str, n_frames: int, profile: Profile, seed: int, name: str | None = None) -> dict:
    """How the person fills the views of ``rigs`` (one rig, or several pooled, e.g. the H36M-like test subjects),
    from the labels of ``n_frames`` poses of ``split`` per rig (rig i drawn with seed ``seed + i``; no images): a
    row of chapter 2's ``framing.csv``.

    ``person_extent_fraction``: mean over frames and views of max(bbox width, height) of the joints inside the image
    over the image side; ``mm_per_heatmap_px``: mean pelvis depth / heatmap focal length (one heatmap pixel at the
    person); ``jdr_threshold_px``: the papers' JDR threshold (12.8 sensor px, :mod:`mfcore.metrics`) in view pixels;
    ``jdr_threshold_mm``: it at the pelvis (threshold px × depth / focal), and ``jdr_threshold_body_fraction`` that
    over the body height (:func:`mfcore.skeleton.body_height_m`); ``quarter_head_mm``; ``out_of_image_fraction`` of
    the joints; ``sensor`` (w×h, or ``view`` for a rig that is its own sensor) and the mean ``view_window_px`` side
    in sensor pixels; ``frames``, ``views``. Means over every (frame, view)."""
    rig_list = [get_rig(r).at_resolution(profile.studio.image_px) for r in (rigs if isinstance(rigs, (list, tuple))
                                                                            else [rigs])]
    px, hm = profile.studio.image_px, profile.studio.heatmap_px
    cols = {k: [] for k in ("extent", "mm_hm", "thr_px", "thr_mm", "thr_body", "quarter_mm", "out", "window")}
    for i, rig in enumerate(rig_list):
        X = motion.sample_poses(split, n_frames, seed + i)[0].double()
        P = rig.projections(torch.float64)
        x, z = project(P, X), depth(P, X)  # (B, V, J, 2), (B, V, J)
        inside = (z > 0) & ((x >= -0.5) & (x <= px - 0.5)).all(-1)
        big = torch.tensor(float("inf"), dtype=x.dtype)
        lo = torch.where(inside[..., None], x, big).amin(-2)
        hi = torch.where(inside[..., None], x, -big).amax(-2)
        extent = (hi - lo).amax(-1) / px  # (B, V)
        extent = extent[inside.sum(-1) >= 2]
        f = rig.focal_px(torch.float64)  # (V,) view pixels
        z_pelvis = z[..., skeleton.ROOT]  # (B, V) metres
        s = rig.sensor_px_per_view_px(torch.float64)
        thr_px = metrics.jdr_threshold_view_px(s, "half_head")  # (V,)
        thr_mm = 1000 * thr_px * z_pelvis / f
        cols["extent"].append(extent.flatten())
        cols["mm_hm"].append((1000 * z_pelvis / (f * hm / px)).flatten())
        cols["thr_px"].append(thr_px.expand_as(z_pelvis).flatten())
        cols["thr_mm"].append(thr_mm.flatten())
        cols["thr_body"].append((thr_mm / (1000 * skeleton.body_height_m(X))[:, None]).flatten())
        cols["quarter_mm"].append((1000 * metrics.jdr_threshold_view_px(s, "quarter_head") * z_pelvis / f).flatten())
        cols["out"].append((~inside).double().flatten())
        cols["window"].append((s * px).expand_as(z_pelvis).flatten())
    mean = {k: float(torch.cat(v).mean()) for k, v in cols.items()}
    sizes = sorted({f"{w}x{h}" for r in rig_list for w, h in (s.image_size for s in r.sensors)}) or ["view"]
    return dict(rig=name or rig_list[0].name, person_extent_fraction=mean["extent"], mm_per_heatmap_px=mean["mm_hm"],
                jdr_threshold_mm=mean["thr_mm"], jdr_threshold_body_fraction=mean["thr_body"],
                quarter_head_mm=mean["quarter_mm"], jdr_threshold_px=mean["thr_px"],
                out_of_image_fraction=mean["out"], sensor=",".join(sizes), view_window_px=mean["window"],
                image_px=px, heatmap_px=hm, frames=n_frames * len(rig_list), views=rig_list[0].num_views)
