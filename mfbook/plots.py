"""Drawing helpers shared by the chapters (matplotlib): the capture volume and camera frusta in 3D."""

from __future__ import annotations

import numpy as np

from mfcore import studio


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


def book_run_timeline(record: dict, device_name: str = "", timed=()):
    """A bar per chapter from its start to its end (seconds from the start of the run) of a ``run_book execute``
    record (``results/<profile>/book_run.json``); the chapters in ``timed`` (those that time their own work) in red.
    Returns the figure."""
    import matplotlib.pyplot as plt

    chapters = sorted(record.get("chapters", {}).items(), key=lambda kv: (kv[1]["start_s"], kv[0]))
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(chapters), 1) + 1.4))
    for row, (stem, c) in enumerate(chapters):
        is_timed = stem in timed
        ax.barh(row, c["end_s"] - c["start_s"], left=c["start_s"], color="tab:red" if is_timed else "tab:blue",
                alpha=0.85, height=0.6)
        ax.text(c["end_s"] + 3, row, f"{c['end_s'] - c['start_s']:.0f} s", va="center", fontsize=8)
    ax.set_yticks(range(len(chapters)), [s for s, _ in chapters])
    ax.invert_yaxis()
    wall = record.get("wall_seconds", 0.0)
    ax.axvline(wall, color="black", lw=0.8, ls="--")
    ax.set_xlim(0, max(wall, 1.0) * 1.1)
    ax.set_xlabel("seconds from the start of the run")
    where = f" on one {device_name}" if device_name else ""
    ax.set_title(f"The whole book in {wall:.0f} s{where}: {len(chapters)} chapters, up to {record.get('jobs', 1)} at "
                 f"once\n(red: chapters that time their own training, run alone)", fontsize=10)
    fig.tight_layout()
    return fig
