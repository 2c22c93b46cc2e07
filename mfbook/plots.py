"""Drawing helpers shared by the chapters (matplotlib): heatmap panels with pixel axes, (epipolar) lines over them,
curves with an interval band, grouped bars with labelled values, the capture volume and camera frusta in 3D, and the
timeline of a book run. Each returns what it drew, so a chapter titles its figure with the finding."""

from __future__ import annotations

import numpy as np
import torch

from mfcore import epipolar, studio


# ------------------------------------------------------------------------------------------ figures at page width
PAGE_WIDTH_IN = 11.0  # a figure this wide shows at about 0.65× on a book page: keep its fonts at 11 pt or more
PAGE_FONT_PT = 12


def legible(fig, fontsize: float = PAGE_FONT_PT):
    """Raise every text of ``fig`` (titles, labels, tick labels, legends, colour bars) to at least ``fontsize`` points,
    so that it reads at page width. Returns the figure."""
    from matplotlib.text import Text

    for ax in fig.axes:  # tick labels are made anew at each draw: raise the axis' setting, not today's texts
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            ticks = axis.get_major_ticks()
            if ticks and ticks[0].label1.get_fontsize() < fontsize:
                ax.tick_params(axis=which, labelsize=fontsize)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < fontsize:
            text.set_fontsize(fontsize)
    return fig


# ---------------------------------------------------------------------------------------------------- heatmaps
def pixel_axes(ax, side: int, unit: str = "heatmap px", labels: bool = True) -> None:
    """Limit ``ax`` to a ``side``² image (pixel centres at integers, y down), equal aspect, integer ticks, no grid, axes
    labelled in ``unit``."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(-0.5, side - 0.5)
    ax.set_ylim(side - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.grid(False)  # a theme's grid would cross the pixels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if labels:
        ax.set_xlabel(f"x ({unit})")
        ax.set_ylabel(f"y ({unit})")


def gain_axis(ax, gains, label: str) -> None:
    """The x axis of an oracle-gain sweep: symlog (the sweep is dense near 0), every gain as a tick, from 0 to 1.1×
    the largest gain."""
    ax.set_xlabel(label)
    ax.set_xscale("symlog", linthresh=0.05, linscale=0.5)
    ax.set_xticks(list(gains), [f"{g:g}" for g in gains], fontsize=8)
    ax.set_xlim(0, 1.1 * max(gains))
    ax.minorticks_off()


def heatmap_panels(images, titles, *, ncols: int | None = None, cmap: str = "magma", vmin=None, vmax=None,
                   colorbar: str | None = None, unit: str = "heatmap px", panel_in: float = 3.4, axes=None,
                   title_size: float | None = None):
    """A row (or grid of ``ncols`` columns) of square heatmaps (each (H, W), tensor or array) with their ``titles``,
    axes in ``unit``; ``colorbar`` is the label of one colour bar per panel (none when left out). With ``axes`` it
    draws into those (unused ones are hidden). Returns ``(fig, axes)``, ``axes`` flat, one per image."""
    import matplotlib.pyplot as plt

    images = [_as_array(img) for img in images]
    titles = list(titles)
    if len(titles) != len(images):
        raise ValueError(f"heatmap_panels needs one title per image; got {len(titles)} titles for {len(images)} images")
    if axes is None:
        ncols = ncols or len(images)
        nrows = -(-len(images) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(panel_in * ncols * (1.2 if colorbar else 1.0),
                                                        panel_in * nrows + 0.4), squeeze=False)
    axes = list(np.ravel(axes))
    fig = axes[0].figure
    for ax, img, title in zip(axes, images, titles):
        h, w = img.shape
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        ax.set_title(title, fontsize=title_size)
        pixel_axes(ax, w, unit)
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar)
    for ax in axes[len(images):]:
        ax.axis("off")
    return fig, axes[:len(images)]


def _as_array(img) -> np.ndarray:
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    img = np.asarray(img, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"a heatmap panel must be one (H, W) image; got shape {img.shape}")
    return img


def draw_lines(ax, lines_px, side: int, colours="crimson", lw: float = 1.5, **kw) -> int:
    """Draw lines (N, 3) (a, b, c: a·x + b·y + c = 0, heatmap px) clipped to the ``side``² image on ``ax``; ``colours``
    one colour or one per line. Returns how many lines cross the image."""
    lines_px = torch.as_tensor(lines_px, dtype=torch.float64).reshape(-1, 3)
    segs = epipolar.line_segment_in_square(lines_px, side)
    colours = _colour_list(colours, len(segs))
    drawn = 0
    for seg, colour in zip(segs, colours):
        if torch.isfinite(seg).all():
            ax.plot(seg[:, 0].numpy(), seg[:, 1].numpy(), color=colour, lw=lw, **kw)
            drawn += 1
    return drawn


def _colour_list(colours, n: int) -> list:
    from matplotlib.colors import is_color_like

    if is_color_like(colours):
        return [colours] * n
    colours = list(colours)
    if len(colours) != n:
        raise ValueError(f"need one colour, or one per line ({n}); got {len(colours)} colours")
    return colours


def epipolar_fans(axs, cameras, src_view: int, pixels_px, side: int, colours="crimson") -> None:
    """Pixels ``pixels_px`` (N, 2) of view ``src_view`` on ``axs[0]``, and their epipolar lines in every other view of
    ``cameras`` (heatmap resolution) on ``axs[1:]``, in camera order. Views are numbered from 1 in the titles."""
    pixels_px = torch.as_tensor(pixels_px, dtype=torch.float64).reshape(-1, 2)
    others = [v for v in range(len(cameras)) if v != src_view]
    if len(axs) != len(cameras):
        raise ValueError(f"epipolar_fans needs one axis per camera ({len(cameras)}); got {len(axs)}")
    axs[0].scatter(pixels_px[:, 0].numpy(), pixels_px[:, 1].numpy(), c=_colour_list(colours, len(pixels_px)),
                   s=40, edgecolors="k", zorder=3)
    what = (f"pixel ({pixels_px[0, 0]:.0f}, {pixels_px[0, 1]:.0f})" if len(pixels_px) == 1
            else f"{len(pixels_px)} chosen pixels")
    axs[0].set_title(f"view {src_view + 1}: {what}")
    for ax, v in zip(axs[1:], others):
        lines = epipolar.epipolar_geometry(cameras[src_view], cameras[v], pixels_px)["line"]
        draw_lines(ax, lines, side, colours)
        ax.set_title(f"view {v + 1}: epipolar line{'s' if len(pixels_px) > 1 else ''}")
    for ax in axs:
        pixel_axes(ax, side)


# ------------------------------------------------------------------------------------------------ curves and bars
def curve_with_band(ax, data, x: str, y: str, lower: str | None = None, upper: str | None = None, *,
                    label: str | None = None, color=None, alpha: float = 0.2, **line_kw):
    """A line of ``data[y]`` against ``data[x]`` (sorted by x) with a shaded band from ``data[lower]`` to
    ``data[upper]`` (both or neither: an interval such as min-max over trials or an inter-quartile range).
    Returns the line."""
    if (lower is None) != (upper is None):
        raise ValueError(f"curve_with_band needs both lower and upper columns or neither; got {lower!r}, {upper!r}")
    d = data.sort_values(x)
    (line,) = ax.plot(d[x].to_numpy(), d[y].to_numpy(), label=label, color=color, **line_kw)
    if lower is not None:
        ax.fill_between(d[x].to_numpy(), d[lower].to_numpy(), d[upper].to_numpy(), color=line.get_color(),
                        alpha=alpha, lw=0)
    return line


def grouped_bars(ax, data, x: str, hue: str, y: str, *, order=None, hue_order=None, colors=None, fmt: str = "{:.0f}",
                 label_size: float = 10, rotation: float = 90, width: float = 0.8):
    """Bars of ``data[y]`` grouped by ``x`` (groups along the axis) and ``hue`` (bars in a group), each bar labelled
    with its value (``fmt``). One row per (x, hue); a missing pair leaves a gap. ``colors``: a dict hue → colour.
    Returns the bar containers, one per hue."""
    order = list(dict.fromkeys(data[x])) if order is None else list(order)
    hue_order = list(dict.fromkeys(data[hue])) if hue_order is None else list(hue_order)
    table = data.set_index([x, hue])[y]
    if not table.index.is_unique:
        raise ValueError(f"grouped_bars needs one row per ({x}, {hue}); got duplicates of "
                         f"{table.index[table.index.duplicated()].unique().tolist()[:3]}")
    step = width / len(hue_order)
    bars = []
    for k, h in enumerate(hue_order):
        values = np.array([table.get((g, h), np.nan) for g in order], dtype=float)
        pos = np.arange(len(order)) - width / 2 + step * (k + 0.5)
        cont = ax.bar(pos, values, step, label=str(h), color=(colors or {}).get(h))
        ax.bar_label(cont, labels=["" if np.isnan(v) else fmt.format(v) for v in values], padding=2,
                     fontsize=label_size, rotation=rotation)
        bars.append(cont)
    ax.set_xticks(np.arange(len(order)), [str(g) for g in order])
    ax.set_xlim(-0.5, len(order) - 0.5)
    top = np.nanmax(table.to_numpy(dtype=float)) if len(table) else 1.0
    ax.set_ylim(0, top * (1.25 if rotation else 1.12))
    return bars


# -------------------------------------------------------------------------------------------------- cameras in 3D
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
