"""The geometry behind cross-view fusion: ideal epipolar fusion weights (Eq. (1) of MetaFuse) and the evidence for
their factorisation into one shared base map and a per-pixel affine warp (Eq. (2) of MetaFuse, Sec. 4.1).

Conventions are those of :mod:`mfcore.geometry`: pixel centres at integer coordinates (x right, y down), square
heatmaps of ``side`` pixels, flattened row-major (pixel index ``i = y * side + x``). Cameras passed here must already be
at heatmap resolution (``camera.at_resolution(heatmap_px)``).

The *ideal* fusion weight map of a view-1 pixel ``i`` over view 2 is

    ω_i(j) = exp(−d(j, l_i)² / (2σ²))   if the point of the ray through ``i`` that ``j`` sees lies in front of both
                                        cameras, else 0,

with ``l_i`` the epipolar line of ``i`` in view 2 and ``d`` the pixel distance to it. Weights peak at 1 on the line
(``normalise="peak"``, the book's choice: an affine warp with bilinear sampling preserves peak values, not sums), so the
fused value of Eq. (1) is a line integral of the other view's heatmap.

Affine warps use the spatial-transformer convention of ``torch.nn.functional.affine_grid`` (``align_corners=False``):
θ (2, 3) maps the *output* pixel's normalised coordinates p ∈ [−1, 1]² to the *input* coordinates it samples, so
``T^θ(ω_base)(p) = ω_base(θ [p; 1])``.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as nnf

from . import geometry, runtime, studio

Tensor = torch.Tensor

# Where the chapter's joints are: a person-sized box (metres, Z up, floor at z = 0) standing in the middle of the
# studio's capture volume (the cylinder of mfcore.studio.VOLUME_RADIUS_M and VOLUME_HEIGHT_M; tests/test_epipolar.py checks the
# box lies inside it), which every camera sees whole. It is not a second capture volume: it is the part of it a standing person fills, where the chapter draws its
# 3D points and about which it swings cameras.
JOINT_BOX_MIN_M = (-0.5, -0.5, 0.0)
JOINT_BOX_MAX_M = (0.5, 0.5, 2.0)
JOINT_BOX_CENTRE_M = tuple(0.5 * (lo + hi) for lo, hi in zip(JOINT_BOX_MIN_M, JOINT_BOX_MAX_M))


# ---------------------------------------------------------------------------------------------------------- cameras
def chapter_cameras(heatmap_px: int) -> tuple[list[geometry.Camera], str]:
    """The chapter's 4-camera rig at heatmap resolution, and a line saying where it comes from.

    The H36M-like rig of :func:`mfcore.studio.h36m_rig` (subject 1).
    """
    _check_side(heatmap_px, "heatmap_px")
    rig = studio.h36m_rig(1).at_resolution(heatmap_px)
    return list(rig.cameras), f"the synthetic H36M-like studio rig of subject 1 (mfcore.studio.h36m_rig, {rig.name})"


def arc_moved_camera(cam: geometry.Camera, angle_deg: float, pivot_m=JOINT_BOX_CENTRE_M) -> geometry.Camera:
    """``cam`` carried rigidly along a horizontal arc: rotated by ``angle_deg`` about the vertical axis through
    ``pivot_m`` (Fig. 3 of MetaFuse: camera 2 moved to camera 3). Intrinsics and image size are unchanged."""
    a = math.radians(angle_deg)
    Rz = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]],
                      dtype=torch.float64)
    pivot = torch.as_tensor(pivot_m, dtype=torch.float64)
    centre = pivot + Rz @ (cam.center_m() - pivot)
    R = cam.R @ Rz.T
    return geometry.Camera(cam.K, R, -R @ centre, cam.image_px, f"{cam.name}@{angle_deg:+g}deg")


def sample_volume_points(n: int, seed: int, device=None) -> Tensor:
    """``n`` points uniform in the joint box (:data:`JOINT_BOX_MIN_M` .. :data:`JOINT_BOX_MAX_M`), (n, 3) float64 metres."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(JOINT_BOX_MIN_M, dtype=torch.float64), torch.tensor(JOINT_BOX_MAX_M, dtype=torch.float64)
    return (lo + (hi - lo) * torch.rand(n, 3, generator=gen, dtype=torch.float64)).to(device)


# -------------------------------------------------------------------------------------------------- pixels and lines
def _check_side(side, name="side"):
    if isinstance(side, bool) or not isinstance(side, int) or side < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {side!r}")


def pixel_grid_px(side: int, device=None, dtype=torch.float64) -> Tensor:
    """Centres of all pixels of a ``side``² heatmap, (side², 2) as (x, y), row-major (index = y·side + x)."""
    _check_side(side)
    r = torch.arange(side, device=device, dtype=dtype)
    y, x = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


def px_to_normalised(x_px: Tensor, side: int) -> Tensor:
    """Pixel coordinates → the [−1, 1] coordinates of ``affine_grid(align_corners=False)``: (2x + 1)/side − 1."""
    return (2.0 * x_px + 1.0) / side - 1.0


def line_to_normalised(line_px: Tensor, side: int) -> Tensor:
    """A line (a, b, c) over pixels (a² + b² = 1) expressed over normalised coordinates, still with unit normal.

    Distances scale by 2/side: a pixel distance d becomes 2d/side.
    """
    a, b, c = line_px.unbind(-1)
    return torch.stack([a, b, (2.0 * c + (a + b) * (side - 1)) / side], dim=-1)


def epipolar_geometry(cam1: geometry.Camera, cam2: geometry.Camera, x1_px: Tensor) -> dict[str, Tensor]:
    """Epipolar lines in view 2 of view-1 pixels ``x1_px`` (N, 2), with the direction the visible half-line runs.

    Returns float64 tensors on ``x1_px``'s device: ``line`` (N, 3) (a, b, c), a² + b² = 1; ``direction`` (N, 2) the unit
    tangent of the line pointing along increasing depth on the ray of x1; ``epipole_h`` (3,) the homogeneous image of
    camera 1's centre in view 2 (P2 [C1; 1]) and ``vanishing_h`` (N, 3) the image of the ray's point at infinity
    (P2 [d; 0]). A ray point X(s) = C1 + s·d images at ``epipole_h + s·vanishing_h``.
    """
    if x1_px.shape[-1] != 2 or x1_px.dim() != 2:
        raise ValueError(f"x1_px must be (N, 2) pixels, got {tuple(x1_px.shape)}")
    dev = x1_px.device
    x1 = x1_px.detach().to("cpu", torch.float64)
    F = geometry.fundamental_matrix(cam1, cam2)
    line = geometry.epipolar_line(F, x1)
    _, d = geometry.back_projection_ray(cam1, x1)  # (N, 3) unit, forward
    P2 = cam2.projection()
    e = P2 @ torch.cat([cam1.center_m(), torch.ones(1, dtype=torch.float64)])  # (3,)
    v = d @ P2[:, :3].T  # (N, 3)
    # image of X(s): (e_xy + s v_xy)/(e_z + s v_z); its derivative in s is ∝ v_xy e_z − e_xy v_z (same sign for all s)
    tangent = v[:, :2] * e[2] - e[:2] * v[:, 2:3]
    tangent = tangent / tangent.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    return {"line": line.to(dev), "direction": tangent.to(dev), "epipole_h": e.to(dev), "vanishing_h": v.to(dev)}


def ideal_fusion_weights(cam1: geometry.Camera, cam2: geometry.Camera, x1_px: Tensor, sigma_px: float = 1.0,
                         normalise: str = "peak", visible_only: bool = True) -> Tensor:
    """Ideal fusion weights ω_i over view 2 for view-1 pixels ``x1_px`` (N, 2): (N, H2, W2) float32.

    ω_i(j) = exp(−d(j, l_i)²/(2σ²)) with d the pixel distance of view-2 pixel j to the epipolar line l_i (the ideal
    correspondence of Eq. (1) of MetaFuse, blurred by σ heatmap pixels). With ``visible_only`` a pixel j keeps its
    weight only if its foot point on the line images a point of the ray through x1 that lies in front of both cameras
    (so the half-line behind camera 1 or behind camera 2 is dropped). ``normalise``: "peak" (1 on the line, the
    book's choice) or "sum" (each non-empty map sums to 1).
    """
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be > 0, got {sigma_px!r}")
    if normalise not in ("peak", "sum"):
        raise ValueError(f"normalise must be 'peak' or 'sum', got {normalise!r}")
    side = cam2.image_px
    dev = x1_px.device
    geo = epipolar_geometry(cam1, cam2, x1_px)
    grid = pixel_grid_px(side, device=dev)  # (Z2, 2)
    line = geo["line"]  # (N, 3)
    dist = line[:, None, 0] * grid[None, :, 0] + line[:, None, 1] * grid[None, :, 1] + line[:, None, 2]  # (N, Z2)
    w = torch.exp(-dist.square() / (2.0 * sigma_px**2))
    if visible_only:
        # foot point q of j on the line; q_h = λ·e + μ·v ⇔ depth in view 2 = 1/λ, ray parameter s = μ/λ: keep λ, μ > 0
        q = grid[None] - dist[..., None] * line[:, None, :2]  # (N, Z2, 2)
        qh = torch.cat([q, torch.ones_like(q[..., :1])], dim=-1)  # (N, Z2, 3)
        M = torch.stack([geo["epipole_h"].expand_as(geo["vanishing_h"]), geo["vanishing_h"]], dim=-1)  # (N, 3, 2)
        gram = M.transpose(-1, -2) @ M  # (N, 2, 2): normal equations, solved in closed form (2 × 2)
        rhs = qh @ M  # (N, Z2, 2)
        g00, g01, g11 = gram[:, None, 0, 0], gram[:, None, 0, 1], gram[:, None, 1, 1]
        det = g00 * g11 - g01 * g01  # > 0 unless camera 1's centre images on the vanishing point (degenerate)
        lam = (g11 * rhs[..., 0] - g01 * rhs[..., 1]) / det
        mu = (g00 * rhs[..., 1] - g01 * rhs[..., 0]) / det
        w = w * ((lam > 0) & (mu > 0))
    if normalise == "sum":
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return w.reshape(-1, side, side).float()


def line_segment_in_square(line_px: Tensor, side: int) -> Tensor:
    """End points (N, 2, 2) of each line (N, 3) clipped to the image square [−0.5, side − 0.5]²; NaN if it misses."""
    lo, hi = -0.5, side - 0.5
    a, b, c = (t.double() for t in line_px.unbind(-1))
    cands = []
    for x in (lo, hi):  # intersections with the vertical borders
        cands.append(torch.stack([torch.full_like(a, x), -(a * x + c) / b], -1))
    for y in (lo, hi):
        cands.append(torch.stack([-(b * y + c) / a, torch.full_like(a, y)], -1))
    pts = torch.stack(cands, 1)  # (N, 4, 2)
    ok = torch.isfinite(pts).all(-1) & (pts >= lo - 1e-9).all(-1) & (pts <= hi + 1e-9).all(-1)
    out = torch.full((len(line_px), 2, 2), float("nan"), dtype=torch.float64)
    for n in range(len(line_px)):  # drawing helper: a handful of lines
        p = pts[n][ok[n]]
        if len(p) >= 2:
            far = (p[:, None] - p[None]).norm(dim=-1).argmax()
            out[n, 0], out[n, 1] = p[far // len(p)], p[far % len(p)]
    return out


# ------------------------------------------------------------------------------------------ parameter counts (Sec. 4.1)
def naive_fuse_param_count(side1: int, side2: int | None = None) -> int:
    """NaiveFuse: one weight per (view-1 pixel, view-2 pixel) pair, Z1·Z2 (Sec. 4.1 of MetaFuse)."""
    _check_side(side1, "side1")
    side2 = side1 if side2 is None else side2
    _check_side(side2, "side2")
    return side1**2 * side2**2


def factorised_param_count(side1: int, side2: int | None = None) -> int:
    """The factorised model of Eq. (2): a shared ω_base (Z2) plus a 6-number affine θ_i per view-1 pixel, Z2 + 6·Z1."""
    _check_side(side1, "side1")
    side2 = side1 if side2 is None else side2
    _check_side(side2, "side2")
    return side2**2 + 6 * side1**2


def param_count_table(sides_px) -> pd.DataFrame:
    """Tidy table of per-camera-pair fusion parameters: heatmap_px, model (NaiveFuse | Factorised), params, plus the
    ratio NaiveFuse / factorised on each row."""
    rows = []
    for s in sides_px:
        naive, fact = naive_fuse_param_count(s), factorised_param_count(s)
        rows.append({"heatmap_px": s, "model": "NaiveFuse", "params": naive, "ratio_to_factorised": naive / fact})
        rows.append({"heatmap_px": s, "model": "Factorised", "params": fact, "ratio_to_factorised": 1.0})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ affine warps (Eq. 2)
def affine_warp(source: Tensor, theta: Tensor) -> Tensor:
    """T^θ of Eq. (2): sample ``source`` (H, W) or (N, H, W) at θ [p; 1] for every output pixel p, bilinear, zeros
    outside. theta (N, 2, 3) → (N, H, W)."""
    if theta.dim() != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must be (N, 2, 3), got {tuple(theta.shape)}")
    n = theta.shape[0]
    src = source.expand(n, *source.shape[-2:]) if source.dim() == 2 else source
    if src.dim() != 3 or src.shape[0] != n:
        raise ValueError(f"source must be (H, W) or (N={n}, H, W), got {tuple(source.shape)}")
    h, w = src.shape[-2:]
    grid = nnf.affine_grid(theta.to(src.dtype), [n, 1, h, w], align_corners=False)
    return nnf.grid_sample(src[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def line_frame_affine(target_line: Tensor, target_dir: Tensor, source_line: Tensor, source_dir: Tensor) -> Tensor:
    """The rigid θ (N, 2, 3) taking target lines onto source lines (all in normalised coordinates, unit normals),
    target direction onto source direction, foot point (closest to the image centre) onto foot point, preserving
    distances to the line, so ``affine_warp(source_map, θ)`` redraws a source line map along the target line."""
    def frame(line, direction):
        n_line = line[..., :2]
        t = direction - (direction * n_line).sum(-1, keepdim=True) * n_line
        t = t / t.norm(dim=-1, keepdim=True)
        n = torch.stack([-t[..., 1], t[..., 0]], -1)  # right-handed normal, so θ is a rotation (never a reflection)
        foot = -line[..., 2:3] * n_line  # the line's point closest to the image centre
        return foot, t, n
    f_t, t_t, n_t = frame(target_line, target_dir.to(target_line))
    f_s, t_s, n_s = frame(source_line.to(target_line), source_dir.to(target_line))
    f_s, t_s, n_s = (x.expand_as(f_t) for x in (f_s, t_s, n_s))
    A = t_s[..., :, None] * t_t[..., None, :] + n_s[..., :, None] * n_t[..., None, :]  # (N, 2, 2)
    b = f_s - (A @ f_t[..., None])[..., 0]
    return torch.cat([A, b[..., None]], dim=-1)


CENTRED_LINE = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)  # y = 0 in normalised coordinates
CENTRED_DIR = torch.tensor([1.0, 0.0], dtype=torch.float64)


def centred_line_map(side: int, sigma_px: float = 1.0) -> Tensor:
    """A horizontal line through the heatmap centre with the ideal profile exp(−d²/2σ²), (side, side) float32: the
    base map's initialisation, and the fixed base of the 'line + θ' baseline."""
    _check_side(side)
    y = torch.arange(side, dtype=torch.float32) - (side - 1) / 2.0
    return torch.exp(-y.square() / (2.0 * sigma_px**2))[:, None].expand(side, side).clone()


def fit_affine_warps(source: Tensor, targets: Tensor, theta_init: Tensor, steps: int, lr: float,
                     learn_source: bool = False, theta_index: Tensor | None = None, desc: str = "affine fit",
                     progress: bool = True) -> dict[str, Tensor]:
    """Fit T^θ(source) ≈ targets by Adam on the mean squared error, batched over all maps (Eq. (2) of MetaFuse).

    source (H, W) shared (the base map ω_base; learnable with ``learn_source``) or (N, H, W) one per target (fixed);
    targets (N, H, W); theta_init (N, 2, 3) one θ per target, or (K, 2, 3) with ``theta_index`` (N,) long naming the θ
    of each target (K = 1 and no index: one θ shared by all).
    Returns the best parameters seen (per θ group when the source is fixed): ``theta`` (as theta_init), ``source``,
    ``fitted`` (N, H, W), and ``loss`` (steps + 1,) (the loss before each step, then at the end), all detached.
    """
    if targets.dim() != 3:
        raise ValueError(f"targets must be (N, H, W), got {tuple(targets.shape)}")
    n = targets.shape[0]
    if theta_init.dim() != 3 or theta_init.shape[1:] != (2, 3):
        raise ValueError(f"theta_init must be (K, 2, 3), got {tuple(theta_init.shape)}")
    if theta_index is None:
        if theta_init.shape[0] not in (1, n):
            raise ValueError(f"theta_init must hold N={n} or 1 θ without theta_index, got {theta_init.shape[0]}")
        theta_index = torch.zeros(n, dtype=torch.long) if theta_init.shape[0] == 1 else torch.arange(n)
    elif theta_index.shape != (n,) or theta_index.min() < 0 or theta_index.max() >= theta_init.shape[0]:
        raise ValueError(f"theta_index must be (N={n},) in [0, {theta_init.shape[0]}), got shape "
                         f"{tuple(theta_index.shape)}")
    if learn_source and source.dim() != 2:
        raise ValueError("learn_source needs one shared (H, W) source map (the base ω_base)")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    targets = targets.float()
    theta_index = theta_index.to(targets.device)
    theta = theta_init.detach().to(targets).clone().requires_grad_(True)
    src = source.detach().to(targets).clone().requires_grad_(learn_source)
    opt = torch.optim.Adam([theta] + ([src] if learn_source else []), lr=lr)
    k = theta.shape[0]
    # Adam steps ~lr even where the gradient vanishes, so it can walk off an exact fit: keep the best parameters seen,
    # per θ when the θ groups are independent (fixed source), else as a whole
    best_theta, best_src = theta.detach().clone(), src.detach().clone()
    best_err = torch.full((k if not learn_source else 1,), float("inf"), device=targets.device)
    losses = []

    def per_group(err_map):  # (N,) squared error sums → per θ group (fixed source) or total
        if learn_source:
            return err_map.sum()[None]
        return torch.zeros(k, device=err_map.device, dtype=err_map.dtype).index_add_(0, theta_index, err_map)

    def keep_best(err_map):
        err = per_group(err_map.detach())
        better = err < best_err
        best_err.copy_(torch.where(better, err, best_err))
        if learn_source:
            if bool(better[0]):
                best_theta.copy_(theta.detach()), best_src.copy_(src.detach())
        else:
            best_theta.copy_(torch.where(better[:, None, None], theta.detach(), best_theta))

    for _ in runtime.progress(range(steps + 1), desc=desc, disable=not progress, leave=False):
        opt.zero_grad(set_to_none=True)
        err_map = (affine_warp(src, theta[theta_index]) - targets).square().flatten(1).sum(-1)  # (N,)
        loss = err_map.sum() / targets.numel()
        losses.append(loss.detach())
        keep_best(err_map)
        if len(losses) > steps:  # the last pass only scores the final step
            break
        loss.backward()
        opt.step()
    with torch.no_grad():
        fitted = affine_warp(best_src, best_theta[theta_index])
    return {"theta": best_theta, "source": best_src, "fitted": fitted, "loss": torch.stack(losses).cpu()}


# ------------------------------------------------------------------------------------------------- fit diagnostics
def relative_l2(fitted: Tensor, target: Tensor) -> Tensor:
    """‖fitted − target‖ / ‖target‖ per map, (N, H, W) × 2 → (N,)."""
    return (fitted - target).flatten(1).norm(dim=-1) / target.flatten(1).norm(dim=-1).clamp_min(1e-12)


def map_line_px(maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The line a weight map draws, by weighted PCA over its non-negative values: centroid (N, 2) px, unit direction
    (N, 2), and mass (N,) (the map's sum)."""
    side = maps.shape[-1]
    w = maps.clamp_min(0).flatten(1).double()  # (N, Z)
    grid = pixel_grid_px(side, device=maps.device)  # (Z, 2)
    mass = w.sum(-1)
    mean = (w @ grid) / mass[:, None].clamp_min(1e-12)
    d = grid[None] - mean[:, None]  # (N, Z, 2)
    cov = torch.einsum("nz,nzi,nzj->nij", w, d, d) / mass[:, None, None].clamp_min(1e-12)
    _, vecs = torch.linalg.eigh(cov)
    return mean, vecs[..., -1], mass


def line_errors(maps: Tensor, line_px: Tensor) -> tuple[Tensor, Tensor]:
    """How far the line a map draws is from the true epipolar line (a, b, c) (N, 3): angle in degrees (0-90) between
    the map's principal direction and the line, and the pixel distance of the map's centroid to the line."""
    mean, direction, _ = map_line_px(maps)
    line = line_px.to(mean)
    tangent = torch.stack([-line[:, 1], line[:, 0]], -1)
    cos = (direction * tangent).sum(-1).abs().clamp(max=1.0)
    angle = torch.rad2deg(torch.acos(cos))
    offset = (line[:, 0] * mean[:, 0] + line[:, 1] * mean[:, 1] + line[:, 2]).abs()
    return angle, offset


def volume_affine(cam_from: geometry.Camera, cam_to: geometry.Camera, points_m: Tensor) -> tuple[Tensor, Tensor]:
    """The least-squares affine map between two views' images of the capture volume (an affine-camera approximation).

    Returns θ (2, 3) taking normalised coordinates of ``cam_from`` to those of ``cam_to`` (points_m (N, 3) projected
    into both), and the RMS residual of that map in ``cam_to`` pixels.
    """
    side = cam_to.image_px
    P = geometry.stack_projections([cam_from, cam_to], dtype=torch.float64)
    x = geometry.project(P, points_m.to(torch.float64).cpu())  # (2, N, 2)
    src = px_to_normalised(x[0], cam_from.image_px)
    dst = px_to_normalised(x[1], side)
    A = torch.cat([src, torch.ones_like(src[:, :1])], -1)  # (N, 3)
    sol = torch.linalg.lstsq(A, dst).solution  # (3, 2)
    resid_px = (A @ sol - dst) * side / 2.0
    return sol.T.contiguous(), resid_px.square().sum(-1).mean().sqrt()


# ------------------------------------------------------------------------------- the chapter's two experiments
def sample_line_pixels(cam1: geometry.Camera, cam2: geometry.Camera, n: int, seed: int, sigma_px: float = 1.0,
                       min_mass: float = 3.0, device=None) -> Tensor:
    """Up to ``n`` view-1 pixels (n, 2) float64 on the CPU whose ideal map over view 2 holds at least ``min_mass``
    (the visible line is a few pixels long), drawn without replacement with ``seed``; all such pixels, in index order,
    when n ≥ their count. ``device`` only sets where the maps are computed."""
    grid = pixel_grid_px(cam1.image_px, device=device)
    mass = ideal_fusion_weights(cam1, cam2, grid, sigma_px).flatten(1).sum(-1).cpu()
    grid = grid.cpu()
    ok = torch.nonzero(mass >= min_mass)[:, 0]
    if n < len(ok):
        gen = torch.Generator().manual_seed(seed)
        ok = ok[torch.randperm(len(ok), generator=gen)[:n]].sort().values
    return grid[ok]


def factorisation_fit(cameras: list[geometry.Camera], pixels_per_pair: int, steps: int, lr: float, seed: int,
                      sigma_px: float = 1.0, device=None, progress: bool = True) -> dict:
    """Evidence for Eq. (2): one base map ω_base shared by every pixel of every ordered camera pair, and one affine θ_i
    per (pair, pixel), fitted so that T^{θ_i}(ω_base) matches the ideal epipolar map of each pixel.

    Methods compared (each a row group in the returned ``table``):
      * ``base+theta``: ω_base (initialised as a centred line) and all θ_i learned jointly by Adam;
      * ``line+theta``: ω_base fixed to the centred line, only θ_i learned;
      * ``closed_form_theta``: the centred line warped by the rigid θ that lays it on the true line (the θ
        initialisation of both fits, no learning);
      * ``single_map``: the best single map without any θ (the mean of all targets: least squares optimum).
    θ starts from the closed-form rigid map, because from a generic start a 1-pixel-wide line has no gradient
    towards a target line it does not overlap.

    Returns ``table`` (tidy DataFrame: pair, pixel_x_px, pixel_y_px, visible_fraction (the share of the in-image line
    that is visible: < 1 where the line is cut at the epipole), method, measurement, value with measurements rel_l2,
    line_angle_deg, line_offset_px), ``targets`` (N, H, W), ``visible_fraction`` (N,),
    ``fits`` {method: (N, H, W)}, ``base`` (H, W),
    ``loss`` {method: (steps + 1,)}, ``pairs`` (N,) pair index, ``pair_names``, ``pixels_px`` (N, 2), ``lines`` (N, 3).
    """
    side = cameras[0].image_px
    targets, lines, dirs, pixels, pair_idx, names, visible = [], [], [], [], [], [], []
    for a in range(len(cameras)):
        for b in range(len(cameras)):
            if a == b:
                continue
            k = len(names)
            names.append(f"{a + 1}->{b + 1}")  # views numbered from 1, as on the page
            x1 = sample_line_pixels(cameras[a], cameras[b], pixels_per_pair, seed + k, sigma_px, device=device)
            geo = epipolar_geometry(cameras[a], cameras[b], x1)
            targets.append(ideal_fusion_weights(cameras[a], cameras[b], x1.to(device), sigma_px))
            whole = ideal_fusion_weights(cameras[a], cameras[b], x1.to(device), sigma_px, visible_only=False)
            visible.append((targets[-1].flatten(1).sum(-1) / whole.flatten(1).sum(-1).clamp_min(1e-12)).cpu())
            lines.append(geo["line"]), dirs.append(geo["direction"]), pixels.append(x1)
            pair_idx.append(torch.full((len(x1),), k, dtype=torch.long))
    targets = torch.cat(targets).to(device)
    lines, dirs, pixels, pair_idx = torch.cat(lines), torch.cat(dirs), torch.cat(pixels), torch.cat(pair_idx)
    visible = torch.cat(visible).double()
    theta0 = line_frame_affine(line_to_normalised(lines, side), dirs, CENTRED_LINE, CENTRED_DIR).float().to(device)
    base0 = centred_line_map(side, sigma_px).to(device)

    fits, losses = {}, {}
    full = fit_affine_warps(base0, targets, theta0, steps, lr, learn_source=True, desc="base+θ", progress=progress)
    fits["base+theta"], losses["base+theta"] = full["fitted"], full["loss"]
    line_only = fit_affine_warps(base0, targets, theta0, steps, lr, learn_source=False, desc="line+θ",
                                 progress=progress)
    fits["line+theta"], losses["line+theta"] = line_only["fitted"], line_only["loss"]
    with torch.no_grad():
        fits["closed_form_theta"] = affine_warp(base0, theta0)
        fits["single_map"] = targets.mean(0, keepdim=True).expand_as(targets)

    rows = []
    for method, fitted in fits.items():
        rel = relative_l2(fitted, targets).cpu()
        angle, offset = line_errors(fitted, lines.to(fitted.device))
        for name, vals in (("rel_l2", rel), ("line_angle_deg", angle.cpu()), ("line_offset_px", offset.cpu())):
            rows.append(pd.DataFrame({"pair": [names[k] for k in pair_idx.tolist()], "pixel_x_px": pixels[:, 0].numpy(),
                                      "pixel_y_px": pixels[:, 1].numpy(), "visible_fraction": visible.numpy(),
                                      "method": method, "measurement": name,
                                      "value": vals.double().numpy()}))
    return {"table": pd.concat(rows, ignore_index=True), "targets": targets, "visible_fraction": visible,
            "fits": fits, "base": full["source"],
            "loss": losses, "pairs": pair_idx, "pair_names": names, "pixels_px": pixels, "lines": lines}


def camera_move_fit(cam1: geometry.Camera, cam2: geometry.Camera, x1_px: Tensor, angles_deg, steps: int, lr: float,
                    seed: int, sigma_px: float = 1.0, device=None, progress: bool = True) -> dict:
    """Fig. 3/4 of MetaFuse: camera 2 moves along an arc around the volume; how affine is the change of each line?

    For every move angle and view-1 pixel, the ideal map over the original camera 2 (source) is warped onto the map
    over the moved camera (target):
      * ``per_pixel``: one θ per (move, pixel), started from the rigid line-to-line map, refined by Adam;
      * ``shared``: one θ per move for all pixels, started from the least-squares affine between the two views'
        images of the capture volume (:func:`volume_affine`), refined by Adam;
      * ``identity``: no transform (the source map as is), the baseline.
    Returns ``table`` (tidy: move, arc_deg, pixel_x_px, pixel_y_px, method, measurement, value; per pixel rel_l2 of
    each method and, for the true lines (method ``true_line``), line_angle_change_deg and line_offset_change_px (change
    of the line's distance to the image centre); per move volume_affine_rms_px), ``sources`` (N, H, W), ``targets``
    (M, N, H, W), ``fits`` {method: (M, N, H, W)}, ``moved`` (the M moved cameras).
    """
    side = cam2.image_px
    n = len(x1_px)
    x1_px = x1_px.detach().cpu()
    src_map = ideal_fusion_weights(cam1, cam2, x1_px.to(device), sigma_px)  # (N, H, W)
    geo0 = epipolar_geometry(cam1, cam2, x1_px)
    l0n = line_to_normalised(geo0["line"], side)
    points = sample_volume_points(2000, seed)
    moved, targets, theta_pp, theta_sh, rms, rows = [], [], [], [], [], []
    cols = {"pixel_x_px": x1_px[:, 0].double().cpu().numpy(), "pixel_y_px": x1_px[:, 1].double().cpu().numpy()}
    centre = (side - 1) / 2.0
    dist0 = (geo0["line"][:, :2].sum(-1) * centre + geo0["line"][:, 2]).abs()
    for m, ang in enumerate(angles_deg):
        cam3 = arc_moved_camera(cam2, float(ang))
        geo = epipolar_geometry(cam1, cam3, x1_px)
        moved.append(cam3)
        targets.append(ideal_fusion_weights(cam1, cam3, x1_px.to(device), sigma_px))
        theta_pp.append(line_frame_affine(line_to_normalised(geo["line"], side), geo["direction"], l0n,
                                          geo0["direction"]))
        th, r = volume_affine(cam3, cam2, points)
        theta_sh.append(th), rms.append(float(r))
        cos = (geo0["line"][:, :2] * geo["line"][:, :2]).sum(-1).abs().clamp(max=1.0)
        dist = (geo["line"][:, :2].sum(-1) * centre + geo["line"][:, 2]).abs()
        for name, vals in (("line_angle_change_deg", torch.rad2deg(torch.acos(cos))),
                           ("line_offset_change_px", (dist - dist0).abs())):
            rows.append(pd.DataFrame({"move": m, "arc_deg": float(ang), **cols, "method": "true_line",
                                      "measurement": name, "value": vals.cpu().numpy()}))
        rows.append(pd.DataFrame({"move": [m], "arc_deg": [float(ang)], "pixel_x_px": [float("nan")],
                                  "pixel_y_px": [float("nan")], "method": ["shared"],
                                  "measurement": ["volume_affine_rms_px"], "value": [r.item()]}))
    M = len(moved)
    tgt = torch.cat(targets)  # (M·N, H, W)
    srcs = src_map.repeat(M, 1, 1)
    pp = fit_affine_warps(srcs, tgt, torch.cat(theta_pp).float(), steps, lr, desc="per-pixel θ", progress=progress)
    sh = fit_affine_warps(srcs, tgt, torch.stack(theta_sh).float(), steps, lr,
                          theta_index=torch.arange(M).repeat_interleave(n), desc="shared θ", progress=progress)
    fits = {"per_pixel": pp["fitted"], "shared": sh["fitted"], "identity": srcs}
    for method, fitted in fits.items():
        rel = relative_l2(fitted, tgt).reshape(M, n).double().cpu()
        for m, ang in enumerate(angles_deg):
            rows.append(pd.DataFrame({"move": m, "arc_deg": float(ang), **cols, "method": method,
                                      "measurement": "rel_l2", "value": rel[m].numpy()}))
    side2 = tgt.shape[-1]
    return {"table": pd.concat(rows, ignore_index=True), "sources": src_map,
            "targets": tgt.reshape(M, n, side2, side2),
            "fits": {k: v.reshape(M, n, side2, side2) for k, v in fits.items()}, "moved": moved,
            "shared_theta": sh["theta"], "volume_rms_px": torch.tensor(rms)}
