"""An imported calibration in words and in a drawing: the rules applied, every camera (size, centre, distance to the
capture volume, distortion), the baselines and the view overlap, and the rig seen from above and in perspective."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import studio
from ..files import atomic_write_bytes
from .conventions import sensors_of
from .distortion import distortion_shift_px


def surface_points_m(n_azimuth: int = 48, n_height: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Points on the capture cylinder's side (N, 3) metres and their outward normals (N, 3)."""
    phi = np.arange(n_azimuth) * 2 * np.pi / n_azimuth
    z = (np.arange(n_height) + 0.5) * studio.VOLUME_HEIGHT_M / n_height
    P, Z = np.meshgrid(phi, z)
    normals = np.stack([np.cos(P), np.sin(P), np.zeros_like(P)], -1).reshape(-1, 3)
    points = np.concatenate([studio.VOLUME_RADIUS_M * normals[:, :2], Z.reshape(-1, 1)], 1)
    return points, normals


def view_overlap(rig: studio.Rig) -> np.ndarray:
    """(V, V): the fraction of the capture cylinder's side that both cameras see face-on (the surface faces them)."""
    X, n = surface_points_m()
    centres = rig.centers_m().numpy()
    faces = np.stack([((C - X) * n).sum(1) > 0 for C in centres])  # (V, N)
    return (faces[:, None] & faces[None]).mean(-1)


def summary(imported) -> str:
    """The import in words: rules, cameras (size, centre, distance to the volume, distortion), baselines, overlap."""
    rig = imported.rig
    centres = rig.centers_m().numpy()
    mid = np.array([0.0, 0.0, 0.5 * studio.VOLUME_HEIGHT_M])
    lines = [f"{imported.source} ({imported.format}): rig {rig.name!r}, {rig.num_views} cameras",
             f"units: {imported.unit_label} ({imported.rules['units']})", f"up: {imported.up} ({imported.rules['up']})",
             f"re-centring: {imported.rules['centre']}; offset {np.round(imported.offset_m, 3).tolist()} m",
             "", f"{'#':>3} {'camera':<16}{'image w×h':>12}{'centre x, y, z (m)':>26}{'to volume centre (m)':>22}"
             f"{'to volume side (m)':>20}{'distortion (px)':>17}"]
    for c, s, C in zip(rig.cameras, sensors_of(rig), centres):
        size = f"{s.image_size[0]}×{s.image_size[1]}"
        side = math.hypot(C[0], C[1]) - studio.VOLUME_RADIUS_M
        xyz = ", ".join(f"{v:.2f}" for v in C)
        lines.append(f"{len(lines) - 5:>3} {c.name:<16}{size:>12}{xyz:>26}{np.linalg.norm(C - mid):>22.2f}{side:>20.2f}"
                     f"{distortion_shift_px(s.K, s.dist, s.image_size):>17.1f}")
    names = [f"#{i + 1}" for i in range(rig.num_views)]  # the cameras' numbers in the table above
    base = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    overlap = view_overlap(rig)
    for title, M, fmt in (("baselines (m)", base, "{:>7.2f}"),
                          ("view overlap (fraction of the volume's side seen face-on by both)", overlap, "{:>7.2f}")):
        lines += ["", title, " " * 6 + "".join(f"{n:>7}" for n in names)]
        lines += [f"{n:<6}" + "".join(fmt.format(v) for v in row) for n, row in zip(names, M)]
    return "\n".join(lines)


def draw_rig(rig: studio.Rig, title: str = "") -> Figure:
    """The rig from above and in perspective: camera centres, optical axes, the capture volume (grey), metres."""
    fig = Figure(figsize=(11, 5))
    FigureCanvasAgg(fig)
    phi = np.linspace(0, 2 * np.pi, 73)
    ring = studio.VOLUME_RADIUS_M * np.stack([np.cos(phi), np.sin(phi)])
    centres = rig.centers_m().numpy()
    top = fig.add_subplot(1, 2, 1)
    persp = fig.add_subplot(1, 2, 2, projection="3d")
    top.fill(*ring, color="0.85", label="capture volume (r = 1.2 m)")
    for z in (0.0, studio.VOLUME_HEIGHT_M):
        persp.plot(*ring, np.full(phi.shape, z), color="0.5", lw=1)
    for x, y in ring[:, ::18].T:  # four vertical edges of the cylinder
        persp.plot([x, x], [y, y], [0.0, studio.VOLUME_HEIGHT_M], color="0.5", lw=0.6)
    for i, (c, C) in enumerate(zip(rig.cameras, centres)):
        colour = f"C{i % 10}"
        axis = c.R.numpy()[2]
        reach = np.linalg.norm(C - np.array([0, 0, 1.0]))  # draw the axis as far as the volume
        for ax, dims in ((top, 2), (persp, 3)):
            ax.plot(*np.stack([C, C + reach * axis])[:, :dims].T, color=colour, lw=0.8, ls=":")
            ax.scatter(*C[:dims], color=colour, s=18)
            ax.text(*C[:dims], f" {c.name}", fontsize=7, color=colour)
    top.set(xlabel="x (m)", ylabel="y (m)", aspect="equal", title="seen from above")
    top.legend(fontsize=7, loc="upper center")
    persp.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m, up)", title="perspective")
    span = max(float(np.abs(centres[:, :2]).max()), 2.0)
    persp.set(xlim=(-span, span), ylim=(-span, span), zlim=(0, max(float(centres[:, 2].max()), 2.5)))
    fig.suptitle(title or f"rig {rig.name!r}: {rig.num_views} cameras (dots, dotted optical axes) around the capture "
                          f"volume (grey cylinder), book frame: metres, z up")
    return fig


def save_png(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG atomically (no time stamp in the file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


