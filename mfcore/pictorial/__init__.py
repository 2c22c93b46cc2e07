"""3D pose from multi-view 2D heatmaps: triangulation baselines, the Pictorial Structure Model (PSM) and the Recursive
PSM (RPSM) of Cross View Fusion (Qiu et al., ICCV 2019, Sec. 4), the 3D step behind MetaFuse Tables 2-3.

**Pixel frame.** Everything here works in *heatmap* pixels: pass projection matrices scaled to the heatmap resolution
(:func:`heatmap_projections` turns the (V, 3, 4) image-resolution matrices of a rig or a ``MultiViewBatch`` into them).
Heatmaps are (B, V, J, h, w) with pixel centres at integer coordinates; a 2D result in image pixels is
``geometry.scale_pixels(x_hm, heatmap_px, image_px)``. World points are metres, Z up.

**No ground truth at test time.** The public reference code centres its 3D grid on the ground-truth root and reads limb
lengths from the ground-truth pose of the test frame. Here the grid is centred on the root *estimated* from the heatmaps
(RANSAC triangulation, :func:`estimate_root_m`) and limb lengths are scored against statistics of *training* motions
(:func:`limb_length_stats`).

**Model.** A pose is a choice of one state (3D location) per joint; its log score is
``Σ_j log φ_j(X_j) + Σ_(p,c) log ψ_pc(|X_p − X_c|)``. The unary is ``φ_j(X) = Σ_views heatmap_vj(project_v(X))``
(bilinear sampling; a location outside a view, or behind it, contributes 0 for that view), used as
``log(φ + floor·max φ)`` so that a joint without evidence is not −∞. The limb compatibility is flat inside a band and
Gaussian outside it, ``log ψ(d) = −½ (max(0, |d − μ| − band) / σ_eff)²``, with μ and σ the training-motion mean and
spread of the limb's length, ``band = 2σ + s/2`` and ``σ_eff² = σ² + s²/6`` for a grid of spacing s (each end snapped
to a cell of side s moves the length by about s/√6). The flat band plays the role of the reference code's length
tolerance: a Gaussian alone would fight the unary over the quantisation of every limb and pull the whole skeleton
rigidly away from the evidence. The skeleton is a tree, so the best pose is found exactly by max-product (Viterbi)
message passing, leaves to root in log space, then back-tracking the argmax (:func:`max_product_tree`).

* PSM (stage 0): one cubic grid of ``grid_bins³`` cell centres, shared by all joints, over a ``cube_size_mm`` cube
  around the estimated root (:func:`psm_grid_m`). The book's grids are odd (15 at full, 7 at smoke), so that the cube
  centre, the estimated root, is a cell centre: on the paper's even 16³ grid it falls on a cell corner, and the
  pelvis can never be nearer than s·√3/2 (108 mm at 2 m / 16) to where the evidence puts it.
* RPSM (stages 1..T, Cross View Fusion Sec. 4: "for each joint, we discretize the space around its current location
  into a 2×2×2 grid", and the bounding volume of that grid shrinks by the number of bins every stage): every joint
  gets its own ``rpsm_bins³`` grid around its current estimate; all joints are refined together with the pairwise term
  recomputed on the fly from the current candidates. At stage t the candidates sit at ±s/2^t per axis around the
  estimate (s the PSM cell: a bounding volume of side s/2^(t−1), halved every stage, as the reference code's
  ``cur_grid_size / recur_nbins``), so T stages can move a joint by up to s (any point of its PSM cell and the
  neighbouring half cells) and resolve it to ``final_cell_mm = s / 2^(T−1)``. The paper runs T = 10 (the profiles'
  ``rpsm_stages``): 0.26 mm at 15³ over 2 m, far below any heatmap's resolution, so the 3D error is the evidence's,
  not the grid's. The limb band keeps the PSM's width at every stage (as
  the reference keeps its tolerance): the estimate of a stage is still off by up to a PSM cell, so a band that shrank
  with the grid would lock the skeleton before the unary has placed it.

**Reading heatmaps between pixels (two options beyond the paper).** ``antialias=True`` smooths every heatmap, per
frame and view, with a Gaussian of half the stage's grid spacing as projected into that view, before the grid reads it:
a grid much coarser than the heatmap peaks otherwise samples between them and sees only the floor (8 bins over 2 m
against σ = 1 px peaks at 40 mm/px: 0.6 m error without, 17 mm with, in ``tests/test_pictorial.py``). At the paper's
sizes (16 bins, σ = 2 px at 64²) it changes nothing measurable. ``interpolation="bicubic"`` reads sub-pixel peaks
that bilinear interpolation flattens onto pixel centres. Both default to the paper's unary (off, bilinear); the book's
profiles switch ``antialias`` on (``profile.pictorial.antialias``).

**Batched, and its memory.** B frames go through one set of tensor ops: the unary is (B, J, S) from one
``grid_sample`` over all views; the PSM pairwise never exists as (B, limbs, G³, G³) (3375² per limb and frame at
G = 15, 2.7 GiB per limb for B = 64). Every frame's PSM grid is the same lattice up to a translation, so the distance
between two cells depends only on their index offset: one table of squared integer offsets (G³, G³)
(:func:`lattice_sq_offsets`, int16, 22 MiB at G = 15) serves all frames, limbs and calls, built once per grid and
device and kept in a small LRU (it does not depend on the cameras); each limb's compatibility is a lookup in its table
of the ≤ 3(G−1)² + 1 possible values. Messages are exact max-plus products computed in chunks of parent cells, in
buffers allocated once per call, so the largest temporary is ``B × chunk × G³`` floats, bounded by ``chunk_elements``
(default 2²⁷ floats = 512 MiB; B = 64, G = 15 → chunks of 621 cells), plus the offset table. RPSM stages need only
(B, limbs, n³, n³) with n³ = 8. This package is the reference; :class:`mfcore.rpsm_solver.RPSMSolver` gives the same
poses with everything that depends only on the rig, the grid and the limb statistics built once, for live use one
frame per call (``benchmarks/bench_rpsm.py`` measures both, batched and one frame per call).

**Bad views.** A view whose heatmaps for a frame are all zero or contain NaN/inf is ignored with a warning (it never
turns into a NaN pose); a frame left with fewer than 2 usable views is a ``ValueError`` naming it.

The package, one concept a module:

* :mod:`.views` — heatmaps and their cameras: projections at heatmap resolution, usable views, synthetic heatmaps;
* :mod:`.triangulation` — the baselines: DLT of the heatmap maxima (plain or confidence-weighted), RANSAC, the root;
* :mod:`.limbs` — the pairwise term: limb-length statistics of training motions and the limb compatibility ψ;
* :mod:`.unary` — the unary term: heatmaps summed over views at 3D points, and the anti-aliasing blur;
* :mod:`.tree` — exact MAP on the skeleton tree by max-product message passing;
* :mod:`.lattice` — the PSM's shared cubic grid, its offset table and chunked max-plus messages;
* :mod:`.recursive` — the PSM and the RPSM: the stages, their settings and :func:`rpsm`;
* :mod:`.estimate` — :func:`estimate_3d`, one entry point for every estimator of :data:`ESTIMATORS`.
"""

from .views import heatmap_projections, render_gaussian_heatmaps, report_unusable, usable_flags, usable_views
from .triangulation import estimate_root_m, ransac_points, triangulate_argmax, triangulate_ransac
from .limbs import LimbLengthStats, limb_length_stats
from .unary import ANTIALIAS_FRACTION, blur, blur_sigma_px
from .tree import MessageFn, max_product_tree
from .lattice import DEFAULT_CHUNK_ELEMENTS, OFFSET_CACHE_SIZE, final_cell_mm, lattice_sq_offsets, psm_grid_m
from .recursive import check_rpsm_settings, psm, rpsm
from .estimate import ESTIMATORS, estimate_3d
# private names that mfcore.rpsm_solver and the tests reach as pictorial._name
from .views import _check_inputs, _clean, _project  # noqa: F401
from .triangulation import _argmax_weights, _ransac  # noqa: F401
from .limbs import _check_stats, _length_log_compat, _limb_terms, _limbs  # noqa: F401
from .unary import _log_unary, _smooth_to_grid  # noqa: F401
from .tree import _dense_messages  # noqa: F401
from .lattice import _grid_messages  # noqa: F401
from .recursive import _prepare, _psm_stage, _rpsm_stage  # noqa: F401

__all__ = ["ANTIALIAS_FRACTION", "DEFAULT_CHUNK_ELEMENTS", "ESTIMATORS", "LimbLengthStats", "MessageFn",
           "OFFSET_CACHE_SIZE", "blur", "blur_sigma_px", "check_rpsm_settings", "estimate_3d", "estimate_root_m",
           "final_cell_mm", "heatmap_projections", "lattice_sq_offsets", "limb_length_stats", "max_product_tree", "psm",
           "psm_grid_m", "ransac_points", "render_gaussian_heatmaps", "report_unusable", "rpsm", "triangulate_argmax",
           "triangulate_ransac", "usable_flags", "usable_views"]
