"""Your cameras and your 2D detections → 2D and 3D poses (:mod:`mfcore.detections`, :mod:`mfcore.lift`)::

    python -m mfbook.lift RIG DETECTIONS... -o poses.npz [--fusion none|epipolar|ADAPTED.pt] [--profile full]
                          [--device auto] [--frames index|name] [--layout coco17|body25|coco18|h36m17]
                          [--pixel-centre 0|0.5] [--csv poses.csv] [--png preview.png] [--preview-frame I]
                          [--format F] [--cameras C] [--units mm|cm|m | --scale S | --baseline A B METRES] [--up -y]

RIG: a rig file, any calibration ``python -m mfcore.calibration`` reads, or a built-in rig's name. DETECTIONS: one per
camera in the rig's order, or ``NAME=PATH`` per camera in any order: a COCO-keypoints ``.json``, an OpenPose folder,
a heatmap ``.npy``/``.npz``; or the book's own heatmaps file of every camera. ``--fusion``: none, the epipolar fusion
from the calibration (no labelled frame), or the file ``python -m mfbook.adapt`` saved (MetaFuse^K; the same rig and
profile). Which one to use: ``python -m mfbook.adapt`` measures them side by side on the rig's synthetic twin.

Writes ``poses.npz`` (every array of :class:`mfcore.lift.Lifted`, the 3D poses both in the calibration's own frame
and units and in the book's metres), a tidy CSV (``frame, joint, estimator, x, y, z, units, confidence, inliers,
views``; default beside ``-o``) and a preview figure (the 3D skeleton and its reprojection on every view; default
``<out>_preview.png``). Frames that cannot be lifted are NaN rows, counted in the summary. Bad input is one line
``error: …`` naming the file, camera, frame and field, exit status 2.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mfcore import adapt, calibration, detections, lift, skeleton, studio
from mfcore.calibration import cli as calibration_cli
from mfcore.files import atomic_write_bytes
from mfcore.profiles import get_profile, resolve_device

from . import chapter, progress

BUILTIN_RIGS = ("dome", "h36m", "totalcapture")


def read_rig(spec: str, profile, options: dict) -> tuple[studio.Rig, calibration.Imported | None]:
    """(the rig's views at the profile's image size, the import (None for a built-in rig: the book's frame))."""
    if spec in BUILTIN_RIGS or (spec.startswith("h36m_s") and spec[6:].isdigit()):
        return studio.get_rig(spec).at_resolution(profile.studio.image_px), None
    imported = calibration.read_rig(spec, **options)
    return imported.rig.at_resolution(profile.studio.image_px), imported


def parse_detections(args: list[str]) -> list[tuple[str | None, str]]:
    """(camera name or None, path) of each DETECTIONS argument: ``NAME=PATH`` or ``PATH``."""
    out = []
    for arg in args:
        name, sep, path = arg.partition("=")
        out.append((name, path) if sep and name and "/" not in name else (None, arg))
    return out


def read_recording(rig: studio.Rig, args: list[str], layout, match: str, pixel_centre: float) -> detections.Recording:
    """Every DETECTIONS argument read (:func:`mfcore.detections.read_detections`) and matched to the rig's cameras and
    to each other's frames (:func:`mfcore.detections.assemble`)."""
    found = []
    for name, path in parse_detections(args):
        for d in detections.read_detections(path, name, layout, pixel_centre):
            found.append((name or d.camera, d))
    return detections.assemble(rig, found, match)


def tidy_table(lifted: lift.Lifted, to_file, units: str) -> pd.DataFrame:
    """One row per frame, joint and estimator: ``frame, joint, estimator, x, y, z`` (the calibration's frame and
    units), ``units``, ``confidence``, ``inliers``, ``views`` (NaN rows for frames not lifted)."""
    N, J = len(lifted.frames), len(skeleton.JOINT_NAMES)
    parts = []
    for est, X in lifted.points_m.items():
        xyz = to_file(X.reshape(-1, 3)).reshape(N, J, 3)
        parts.append(pd.DataFrame({
            "frame": np.repeat(lifted.frames, J), "joint": np.tile(skeleton.JOINT_NAMES, N), "estimator": est,
            "x": xyz[..., 0].reshape(-1), "y": xyz[..., 1].reshape(-1), "z": xyz[..., 2].reshape(-1), "units": units,
            "confidence": lifted.confidence[est].reshape(-1), "inliers": lifted.inliers[est].reshape(-1),
            "views": np.repeat(lifted.views, J)}))
    return pd.concat(parts, ignore_index=True)


def save_npz(lifted: lift.Lifted, path, to_file, units: str, profile: str) -> Path:
    """Every array of ``lifted``, atomically: ``<estimator>_3d`` (N, J, 3) in the calibration's frame and ``units``,
    ``<estimator>_3d_m`` in the book's frame (metres, Z up), ``<estimator>_confidence`` / ``_inliers`` (N, J),
    ``<estimator>_reprojection_px`` (N, V, J, 2), ``detections_px``, ``detection_score``, ``fused_px``,
    ``fused_score``, ``views``, ``lifted``, ``frames``, ``joints``, ``cameras``, ``units``, ``fusion``, ``profile``."""
    arrays = {"frames": np.array(lifted.frames), "joints": np.array(skeleton.JOINT_NAMES),
              "cameras": np.array(lifted.camera_names), "units": np.array(units), "fusion": np.array(lifted.method),
              "profile": np.array(profile), "detections_px": lifted.detections_px,
              "detection_score": lifted.detection_score, "fused_px": lifted.fused_px, "fused_score": lifted.fused_score,
              "views": lifted.views, "lifted": lifted.lifted}
    for est, X in lifted.points_m.items():
        arrays.update({f"{est}_3d": to_file(X.reshape(-1, 3)).reshape(X.shape), f"{est}_3d_m": X,
                       f"{est}_confidence": lifted.confidence[est], f"{est}_inliers": lifted.inliers[est],
                       f"{est}_reprojection_px": lifted.reprojection_px[est]})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(Path(path), buf.getvalue())


def reprojection_error_px(lifted: lift.Lifted, estimator: str = "rpsm") -> np.ndarray:
    """Per (frame, view, joint) distance in sensor pixels between the estimator's reprojection and the detection (NaN
    where there is none)."""
    return np.linalg.norm(lifted.reprojection_px[estimator] - lifted.detections_px, axis=-1)


def preview(lifted: lift.Lifted, rig: studio.Rig, frame: int | None = None) -> tuple[Figure, int]:
    """(figure, frame index): the 3D skeletons (RPSM solid, RANSAC dashed; book frame, metres) of one lifted frame
    (default the first) and, per camera, the detections (dots) with the RPSM pose reprojected (lines), sensor pixels."""
    ok = np.flatnonzero(lifted.lifted)
    if not len(ok):
        raise ValueError("no frame could be lifted: nothing to preview")
    f = int(ok[0]) if frame is None else frame
    if not 0 <= f < len(lifted.frames) or not lifted.lifted[f]:
        raise ValueError(f"--preview-frame {frame}: not a lifted frame; lifted frames: {ok[:10].tolist()}…")
    V = rig.num_views
    fig = Figure(figsize=(3.4 * (V + 1.5), 4.0))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, V + 1, width_ratios=[1.5] + [1.0] * V)
    ax3 = fig.add_subplot(grid[0, 0], projection="3d")
    for est, style in (("rpsm", "-"), ("ransac", "--")):
        X = lifted.points_m.get(est)
        if X is None:
            continue
        for a, b in skeleton.LIMBS:
            ax3.plot(*X[f, [a, b]].T, style, color="C0" if est == "rpsm" else "C1", lw=1.2,
                     label=est.upper() if (a, b) == skeleton.LIMBS[0] else None)
    X = lifted.points_m["rpsm"][f]
    centre, reach = np.nanmean(X, axis=0), max(float(np.nanmax(np.abs(X - np.nanmean(X, axis=0)))), 0.5)
    ax3.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m, up)", title="3D pose (book frame)",
            xlim=(centre[0] - reach, centre[0] + reach), ylim=(centre[1] - reach, centre[1] + reach),
            zlim=(centre[2] - reach, centre[2] + reach))
    ax3.set_box_aspect((1, 1, 1))
    ax3.legend(fontsize=7)
    err = reprojection_error_px(lifted)[f]
    for v in range(V):
        ax = fig.add_subplot(grid[0, v + 1])
        w, h = detections.sensor_window(rig, v)[1]
        det, rep = lifted.detections_px[f, v], lifted.reprojection_px["rpsm"][f, v]
        for a, b in skeleton.LIMBS:
            ax.plot(*rep[[a, b]].T, color="C0", lw=1.0)
        ax.scatter(det[:, 0], det[:, 1], s=10, color="crimson", zorder=3, label="detections")
        ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5), aspect="equal", xlabel="x (px)", ylabel="y (px)" if v == 0
               else "", title=f"{rig.cameras[v].name}: {np.nanmedian(err[v]):.1f} px" if np.isfinite(err[v]).any()
               else f"{rig.cameras[v].name}: no detection")
        ax.tick_params(labelsize=7)
    median = float(np.nanmedian(err)) if np.isfinite(err).any() else float("nan")
    fig.suptitle(f"frame {lifted.frames[f]!r} ({lifted.method}): the RPSM pose reprojects {median:.1f} px (median) "
                 f"from the detections (dots) of its {int(lifted.views[f])} cameras")
    fig.tight_layout()
    return fig, f


def summary(lifted: lift.Lifted, units: str) -> str:
    """The run in words: frames lifted, per estimator the mean confidence and the median reprojection error."""
    n, done = len(lifted.frames), int(lifted.lifted.sum())
    lines = [f"{done} of {n} frames lifted ({lifted.method}); 3D in {units}"]
    for est in lifted.points_m:
        conf = lifted.confidence[est][lifted.lifted]
        err = reprojection_error_px(lifted, est)[lifted.lifted]
        lines.append(f"  {est}: mean joint confidence {np.nanmean(conf) if np.isfinite(conf).any() else float('nan'):.3f}, "
                     f"median reprojection error {np.nanmedian(err) if np.isfinite(err).any() else float('nan'):.1f} px "
                     f"(sensor pixels, against the detections)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfbook.lift", description="2D detections of your calibrated "
                                     "cameras → fused 2D and 3D poses (RANSAC triangulation and the RPSM).")
    parser.add_argument("rig", help="rig file, any calibration file or folder (python -m mfcore.calibration), or a "
                                    "built-in rig's name")
    parser.add_argument("detections", nargs="+", help="per camera PATH (in the rig's order) or NAME=PATH; or the "
                                                      "book's own heatmaps file of every camera")
    parser.add_argument("-o", "--out", required=True, help="the .npz to write")
    parser.add_argument("--fusion", default="none", help="none, epipolar (from the calibration), or an adapted "
                                                         "MetaFuse file from python -m mfbook.adapt")
    parser.add_argument("--profile", default="full", help="sizes (heatmaps, RPSM grid): full (64² heatmaps, the "
                                                          "papers'; a GPU is fast, a CPU finishes) or smoke")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seeds the training poses behind the RPSM's limb lengths")
    parser.add_argument("--frames", choices=detections.MATCHES, default="index",
                        help="match frames across cameras by index or by the number in their names")
    parser.add_argument("--layout", choices=tuple(detections.LAYOUTS), help="the files' joint layout where they do "
                                                                            "not say (default: by the joint count)")
    parser.add_argument("--pixel-centre", type=float, choices=(0.0, 0.5), default=0.0,
                        help="the files' coordinate of the top-left pixel's centre (0: OpenCV, OpenPose, MMPose)")
    parser.add_argument("--csv", help="tidy CSV (default: -o with .csv)")
    parser.add_argument("--png", help="preview figure (default: -o with _preview.png)")
    parser.add_argument("--preview-frame", type=int, help="the frame index the preview shows (default: the first "
                                                          "lifted)")
    calibration_cli.add_import_options(parser)
    args = parser.parse_args(calibration_cli.normalise_argv(list(sys.argv[1:] if argv is None else argv)))
    out = Path(args.out)
    csv_path = Path(args.csv) if args.csv else out.with_suffix(".csv")
    png_path = Path(args.png) if args.png else out.with_name(out.stem + "_preview.png")
    try:
        prof = get_profile(args.profile)
        device = resolve_device(args.device)
        chapter.validate_seed(args.seed)
        chapter.set_seed(args.seed, device)  # (not the chapters' one CPU thread: lifting writes no cache entry,
        progress.install()                    # and a long recording on a CPU wants every core)
        options = calibration_cli.import_options(args)
        rig, imported = read_rig(args.rig, prof, options)
        recording = read_recording(rig, args.detections, args.layout, args.frames, args.pixel_centre)
        spec = args.fusion
        if spec not in lift.FUSIONS and not Path(spec).exists() and Path(spec).suffix != ".pt":
            raise ValueError(f"unknown --fusion {spec!r}; valid: {', '.join(lift.FUSIONS)}, or the .pt file "
                             f"python -m mfbook.adapt saved")
        if spec not in lift.FUSIONS:
            spec = adapt.load_adapted(spec, rig, device)
        print(f"rig {rig.name!r}: {rig.num_views} cameras; {recording.num_frames} frames; profile {prof.name!r} "
              f"({prof.studio.heatmap_px}² heatmaps) on {device}", flush=True)
        for note in recording.notes:
            print(f"note: {note}", flush=True)
        lifted = lift.lift(recording, prof, spec, device, seed=args.seed)
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    to_file = imported.to_file if imported is not None else (lambda X: np.asarray(X, dtype=np.float64))
    units = imported.unit_label if imported is not None else "m"
    for note in lifted.notes[len(recording.notes):]:
        print(f"note: {note}")
    print(summary(lifted, units))
    try:
        save_npz(lifted, out, to_file, units, prof.name)
        atomic_write_bytes(csv_path, tidy_table(lifted, to_file, units).to_csv(index=False, float_format="%.6g")
                           .encode())
        written = [out, csv_path]
        if lifted.lifted.any():
            fig, _ = preview(lifted, rig, args.preview_frame)
            written.append(chapter.save_png(fig, png_path))
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot write {str(err.filename or out)!r}: {err.strerror or err} (give -o/--csv/--png a "
              f"writable path)", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
