"""Drawing helpers shared by the chapters (matplotlib): the capture volume and camera frusta in 3D."""

from __future__ import annotations

import numpy as np

from . import studio


def draw_volume(ax) -> None:
    """The studio's capture cylinder (radius ``studio.VOLUME_RADIUS_M``, height ``studio.VOLUME_HEIGHT_M``) on a 3D axis."""
    phi = np.linspace(0, 2 * np.pi, 60)
    r, h = studio.VOLUME_RADIUS_M, studio.VOLUME_HEIGHT_M
    for z in (0.0, h):
        ax.plot(r * np.cos(phi), r * np.sin(phi), z, color="0.5", lw=0.8)
    for a in phi[::10]:
        x, y = r * np.cos(a), r * np.sin(a)
        ax.plot([x, x], [y, y], [0, h], color="0.7", lw=0.6)


def draw_camera(ax, cam, colour, size: float = 0.5, lw: float = 0.8) -> None:
    """A camera as a pyramid from its centre along its optical axis (``size`` metres deep) on a 3D axis."""
    C = cam.center_m().numpy()
    Rt = cam.R.numpy().T  # columns: camera x (right), y (down), z (forward) in the world
    corners = [C + size * (Rt[:, 2] + sx * 0.5 * Rt[:, 0] + sy * 0.5 * Rt[:, 1]) for sx, sy in
               ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    for c in corners:
        ax.plot(*zip(C, c), color=colour, lw=lw)
    ax.plot(*zip(*(corners + corners[:1])), color=colour, lw=lw)
