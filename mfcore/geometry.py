"""Pinhole cameras and two-view geometry: projection, back-projection rays, fundamental matrices, epipolar lines, and
linear (DLT) triangulation from any number of views.

Conventions: world points in metres (Z up); a camera maps ``x_cam = R @ X_world + t`` and ``x_px ~ K @ x_cam``; pixel
centres sit at integer coordinates, x to the right and y down; images are square, ``image_px`` on a side.
Cross View Fusion (Sec. 3 of MetaFuse) rests on the fact used here: a pixel of view 1 back-projects to a ray whose image
in view 2 is the epipolar line ``l = F x1`` (Hartley & Zisserman, Ch. 9).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def _as_tensor(x, dtype=torch.float64) -> Tensor:
    return x.to(dtype) if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=dtype)


@dataclass(frozen=True)
class Camera:
    """A calibrated pinhole camera: intrinsics ``K`` (3, 3), rotation ``R`` (3, 3), translation ``t`` (3,) metres.

    ``image_px`` is the side of the square image in pixels. Tensors are float64 on the CPU (cameras are tiny); call
    :func:`stack_projections` to get a (V, 3, 4) tensor for batched work on any device.
    """

    K: Tensor
    R: Tensor
    t: Tensor
    image_px: int
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "K", _as_tensor(self.K))
        object.__setattr__(self, "R", _as_tensor(self.R))
        object.__setattr__(self, "t", _as_tensor(self.t).reshape(3))
        if self.K.shape != (3, 3) or self.R.shape != (3, 3):
            raise ValueError(f"camera {self.name!r}: K and R must be 3x3, got {tuple(self.K.shape)} and {tuple(self.R.shape)}")
        if not (isinstance(self.image_px, int) and self.image_px > 0):
            raise ValueError(f"camera {self.name!r}: image_px must be a positive int, got {self.image_px!r}")

    def projection(self) -> Tensor:
        """P = K [R | t], (3, 4)."""
        return self.K @ torch.cat([self.R, self.t[:, None]], dim=1)

    def center_m(self) -> Tensor:
        """Camera centre C = -Rᵀ t in world metres, (3,)."""
        return -self.R.T @ self.t

    def at_resolution(self, image_px: int) -> "Camera":
        """The same camera imaging the same window at ``image_px`` pixels (K rescaled, pixel centres stay integers)."""
        s = image_px / self.image_px
        A = torch.tensor([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
        return Camera(A @ self.K, self.R, self.t, int(image_px), self.name)


def look_at_camera(position_m, target_m, focal_px: float, image_px: int, name: str = "", up=(0.0, 0.0, 1.0)) -> Camera:
    """A camera at ``position_m`` looking at ``target_m`` with the world ``up`` pointing up in the image.

    The principal point is the image centre ((image_px - 1) / 2).
    """
    position = _as_tensor(position_m)
    forward = _as_tensor(target_m) - position
    if forward.norm() < 1e-9:
        raise ValueError(f"camera {name!r}: position and target coincide at {position.tolist()}")
    z = forward / forward.norm()  # optical axis
    x = torch.linalg.cross(z, _as_tensor(up))  # image right
    if x.norm() < 1e-9:
        raise ValueError(f"camera {name!r}: viewing direction is parallel to up={tuple(up)}")
    x = x / x.norm()
    y = torch.linalg.cross(z, x)  # image down
    R = torch.stack([x, y, z])  # rows: camera axes in world coordinates
    t = -R @ position
    c = (image_px - 1) / 2.0
    K = torch.tensor([[focal_px, 0.0, c], [0.0, focal_px, c], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Camera(K, R, t, int(image_px), name)


def camera_from_projection(P: Tensor, image_px: int, name: str = "") -> Camera:
    """The :class:`Camera` of a finite projection matrix ``P`` (3, 4) (any non-zero scale or sign): K upper
    triangular with a positive diagonal and K[2, 2] = 1, R a rotation (det +1), t such that K [R | t] ∝ P.
    RQ decomposition of the left 3 x 3 block (Hartley & Zisserman, Sec. 6.2.4)."""
    P = _as_tensor(P)
    if P.shape != (3, 4):
        raise ValueError(f"P must be (3, 4), got {tuple(P.shape)}")
    M, p4 = P[:, :3], P[:, 3]
    det = torch.linalg.det(M)
    if not torch.isfinite(det) or det.abs() <= 1e-12 * M.abs().max() ** 3:
        raise ValueError("P's left 3x3 block is singular: not a finite camera")
    if det < 0:  # P and -P are the same camera; pick the sign with det(K R) > 0
        M, p4 = -M, -p4
    flip = torch.eye(3, dtype=M.dtype).flip(0)
    Q, U = torch.linalg.qr((flip @ M).T)  # RQ of M from QR of its row-reversed transpose
    K, R = flip @ U.T @ flip, flip @ Q.T
    D = torch.diag(torch.sign(torch.diagonal(K)))
    K, R = K @ D, D @ R
    t = torch.linalg.solve(K, p4)
    return Camera(K / K[2, 2], R, t, int(image_px), name)


def stack_projections(cameras, dtype=torch.float32, device=None) -> Tensor:
    """Projection matrices of ``cameras`` as one (V, 3, 4) tensor."""
    return torch.stack([c.projection() for c in cameras]).to(dtype=dtype, device=device)


def _homogeneous(X: Tensor) -> Tensor:
    return torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)


def project(P: Tensor, X: Tensor) -> Tensor:
    """Project world points into every view: P (V, 3, 4), X (..., N, 3) metres → (..., V, N, 2) pixels."""
    Xh = _homogeneous(X).to(P.dtype)  # (..., N, 4)
    x = torch.einsum("vij,...nj->...vni", P, Xh)  # (..., V, N, 3)
    return x[..., :2] / x[..., 2:3]


def depth(P: Tensor, X: Tensor) -> Tensor:
    """Depth along each camera's optical axis, (..., V, N), in the units of X when P's last row is [r3 | t_z].

    Valid for P = K [R | t] with K's last row (0, 0, 1).
    """
    Xh = _homogeneous(X).to(P.dtype)
    return torch.einsum("vj,...nj->...vn", P[:, 2, :], Xh)


def scale_pixels(x_px: Tensor, from_px: int, to_px: int) -> Tensor:
    """Map pixel coordinates between two resolutions of the same window: (x + 0.5)·to/from − 0.5."""
    return (x_px + 0.5) * (to_px / from_px) - 0.5


def _skew(v: Tensor) -> Tensor:
    z = torch.zeros((), dtype=v.dtype)
    return torch.stack([torch.stack([z, -v[2], v[1]]), torch.stack([v[2], z, -v[0]]), torch.stack([-v[1], v[0], z])])


def fundamental_matrix(cam1: Camera, cam2: Camera) -> Tensor:
    """F (3, 3) with x2ᵀ F x1 = 0 for every pair of projections of one 3D point (x in homogeneous pixels).

    F = K2⁻ᵀ [t_rel]ₓ R_rel K1⁻¹ with R_rel = R2 R1ᵀ, t_rel = t2 − R_rel t1. Normalised to unit Frobenius norm.
    """
    R_rel = cam2.R @ cam1.R.T
    t_rel = cam2.t - R_rel @ cam1.t
    E = _skew(t_rel) @ R_rel
    F = torch.linalg.inv(cam2.K).T @ E @ torch.linalg.inv(cam1.K)
    return F / F.norm()


def epipolar_line(F: Tensor, x1_px: Tensor) -> Tensor:
    """The epipolar line in view 2 of pixels ``x1_px`` (..., 2) of view 1, as (a, b, c) with a² + b² = 1, (..., 3).

    A pixel x2 lies on it when a·x + b·y + c = 0; |a·x + b·y + c| is the distance in pixels.
    """
    line = _homogeneous(_as_tensor(x1_px, F.dtype)) @ F.T
    return line / line[..., :2].norm(dim=-1, keepdim=True)


def back_projection_ray(cam: Camera, x_px: Tensor) -> tuple[Tensor, Tensor]:
    """The ray of world points imaged at ``x_px`` (..., 2): origin = camera centre (..., 3), unit direction (..., 3)."""
    xh = _homogeneous(_as_tensor(x_px))
    d = xh @ (cam.R.T @ torch.linalg.inv(cam.K)).T
    d = d / d.norm(dim=-1, keepdim=True)
    return cam.center_m().expand_as(d), d


def triangulate_dlt(P: Tensor, x_px: Tensor, weights: Tensor | None = None) -> Tensor:
    """Linear (DLT) triangulation from any number V ≥ 2 of views.

    P (V, 3, 4); x_px (..., V, N, 2); optional non-negative weights (..., V, N) scale each view's two equations
    (a weight of 0 drops the view, as in confidence-weighted triangulation). Returns (..., N, 3).
    Each view contributes x·p3ᵀ − p1ᵀ and y·p3ᵀ − p2ᵀ; the point is the right singular vector of the stacked system.
    The solve runs in float64 and returns the dtype of ``x_px``.
    """
    V = P.shape[0]
    if P.shape[-2:] != (3, 4) or P.dim() != 3:
        raise ValueError(f"P must be (V, 3, 4), got {tuple(P.shape)}")
    if V < 2 or x_px.shape[-3] != V or x_px.shape[-1] != 2:
        raise ValueError(f"need x_px (..., V, N, 2) with V = {V} >= 2 views, got {tuple(x_px.shape)}")
    out_dtype = x_px.dtype if x_px.is_floating_point() else torch.float32
    P64 = P.to(torch.float64)
    x = x_px.to(torch.float64).movedim(-3, -2)  # (..., N, V, 2)
    rows_x = x[..., 0:1] * P64[:, 2, :] - P64[:, 0, :]  # (..., N, V, 4)
    rows_y = x[..., 1:2] * P64[:, 2, :] - P64[:, 1, :]
    # condition each equation to unit norm first, so that weights (not image scale) set each view's influence
    rows_x = rows_x / rows_x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    rows_y = rows_y / rows_y.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if weights is not None:
        if weights.shape != x_px.shape[:-1]:
            raise ValueError(f"weights must be (..., V, N) = {tuple(x_px.shape[:-1])}, got {tuple(weights.shape)}")
        if (weights < 0).any() or not torch.isfinite(weights).all():
            raise ValueError("weights must be finite and non-negative")
        w = weights.to(torch.float64).movedim(-2, -1)[..., None]  # (..., N, V, 1)
        rows_x, rows_y = rows_x * w, rows_y * w
    A = torch.cat([rows_x, rows_y], dim=-2)  # (..., N, 2V, 4)
    _, _, Vh = torch.linalg.svd(A)
    Xh = Vh[..., -1, :]  # (..., N, 4)
    return (Xh[..., :3] / Xh[..., 3:4]).to(out_dtype)
