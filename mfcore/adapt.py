"""Bring your own cameras: from a rig file to a MetaFuse model adapted to that rig with K labelled frames.

MetaFuse deploys to a new camera configuration by finetuning θ only (Sec. 4.3 of MetaFuse): the meta-trained pair
model (ω_base, θ) initialises every ordered pair of the new rig, Adam moves θ on K labelled frames, and ω_base,
shared by all camera configurations, stays as meta-training left it. This module runs that path for any rig a user
describes (from the command line: ``python -m mfbook.adapt path/to/rig.yaml --k 8``, which adds the book's cache)

Steps of :func:`adapt_to_rig`:

1. load and validate the rig (a rig file, or any calibration :mod:`mfcore.calibration` reads: at least 2 cameras,
   proper rotations, every camera sees the whole capture volume) and image it at the profile's resolution;
2. render a labelled pool of ``profile.metafuse.target_train_frames`` frames (training motions) and a test set of
   ``profile.metafuse.target_test_frames`` frames (unseen test motions) in the rig's cameras and run the frozen warm-up
   backbone on them (:func:`mfcore.backbone.cached_heatmaps`; cached under a hash of the rig's numbers, so a second
   call with the same cameras renders nothing);
3. take the meta-trained MetaFuse pair model (:func:`mfcore.pretrained.pretrained_fusion`, cached) and build the V-view model
   of the rig (:func:`mfcore.fusion.for_rig`);
4. finetune θ only on K frames of the pool (:func:`mfcore.maml.finetune`, Adam at ``profile.metafuse.finetune_lr``);
5. measure, on the test set, NoFusion, the epipolar fusion from the calibration alone (:mod:`mfcore.lift`, zero
   labelled frames) and MetaFuse^K side by side: the JDR (half a head size, Sec. 5.1) and the 3D MPJPE after the RPSM
   (:mod:`mfcore.pictorial`), each against NoFusion with a paired bootstrap interval over the test frames
   (:mod:`mfcore.stats`), and recommend the fusion by that evidence (:meth:`AdaptResult.recommendation`).

Everything is synthetic: the frames are rendered in the book's studio from the user's cameras; the backbone and the
meta-training never saw the rig.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import backbone, calibration, fewshot, fusion, lift, maml, metrics, pictorial, stats, studio
from .files import atomic_torch_save
from .profiles import Profile, get_profile, resolve_device

METHOD = "MetaFuse"  # the pre-trained model that is adapted (Table 1: MetaFuse^K)
BASELINE = "NoFusion"
EPIPOLAR = lift.METHODS["epipolar"]  # the epipolar fusion from the calibration alone (no labelled frame)
COMPARED = (BASELINE, EPIPOLAR, METHOD)  # the fusions mfbook.adapt reports side by side
TABLE_JOINTS = ("mean", *metrics.JOINT_GROUPS)  # the rows of the printed table: mean and the joints of Fig. 7
ADAPTED_KEYS = ("omega_base", "theta")  # what an adapted-parameter file holds (an AffineFuse state_dict)


@dataclass
class AdaptResult:
    """MetaFuse^K adapted to one rig, and how well it does on the rig's test frames.

    ``jdr``: tidy rows ``rig, method, k, trial, joint, jdr, threshold`` (NoFusion as ``k = 0, trial = 0``; MetaFuse
    once per trial) for the mean over joints, the Fig. 7 joint groups and every joint.
    ``frames``: per-frame detections at half a head (:func:`mfcore.metrics.peak_jdr_frame_rows`: ``rig, method, k,
    trial, frame, joint, detected, counted``), the units of :meth:`gain_interval`'s paired comparison.
    ``mpjpe_frames``: per-frame 3D error after the RPSM, ``rig, method, k, trial, frame, mpjpe_mm`` (the units of
    :meth:`mpjpe_interval`). EpipolarFusion rows (``k = 0, trial = 0``) sit beside NoFusion's in all three.
    """

    rig: studio.Rig  # the validated rig at the profile's image resolution
    k: int  # labelled frames used for finetuning
    model: fusion.AffineFuse  # the adapted V-view fusion model of trial 0
    jdr: pd.DataFrame
    finetune_s: list[float]  # wall seconds of the finetuning of every trial (θ only, Adam)
    shots: torch.Tensor  # (K,) indices into the labelled pool of the frames used in trial 0
    pool_frames: int
    test_frames: int
    profile: str = ""
    extra: dict = field(default_factory=dict)
    frames: pd.DataFrame = field(default_factory=pd.DataFrame)
    mpjpe_frames: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def mean_finetune_s(self) -> float:
        return sum(self.finetune_s) / len(self.finetune_s)

    def mean_jdr(self, threshold: str = "half_head") -> pd.DataFrame:
        """JDR at ``threshold`` averaged over trials: tidy ``rig, method, k, joint, jdr`` (joint order kept)."""
        cols = ["rig", "method", "k", "joint"]
        return self.jdr[self.jdr.threshold == threshold].groupby(cols, as_index=False, sort=False).jdr.mean()

    def label(self, method: str) -> str:
        """A method's name in tables: NoFusion, EpipolarFusion, MetaFuse^K."""
        return f"{METHOD}^{self.k}" if method == METHOD else method

    def gain_interval(self, joint: str = "mean", seed: int = 0, method: str = METHOD) -> stats.Interval:
        """``method`` − NoFusion in JDR points on the same test frames at half a head (``joint``: "mean" or a Fig. 7
        group; ``method``: MetaFuse (MetaFuse^K) or EpipolarFusion): :func:`mfcore.stats.paired_bootstrap` over
        frames (two-stage over trials where there are several), weighted by the joints counted in each frame."""
        d = self.frames[(self.frames.joint == joint) & (self.frames.counted > 0)]
        if d.empty:
            raise ValueError(f"no per-frame detections for joint {joint!r}; valid: "
                             f"{sorted(self.frames.joint.unique())}")
        base = d[d.method == BASELINE].set_index("frame")
        ours = _method_rows(d, method, against_baseline=True)
        rate = lambda part: (part.detected / part.counted).to_numpy()  # noqa: E731
        paired = base.loc[ours.frame]
        trials = ours.trial.to_numpy()
        return stats.paired_bootstrap(rate(ours), rate(paired), weights=ours.counted.to_numpy(),
                                      clusters=trials if len(set(trials)) > 1 else None, seed=seed).scaled(100)

    def mpjpe_interval(self, method: str = METHOD, seed: int = 0) -> stats.Interval:
        """``method`` − NoFusion in 3D MPJPE (mm, RPSM) on the same test frames: a paired bootstrap over frames
        (two-stage over trials where there are several); negative = fewer millimetres than NoFusion."""
        d = self.mpjpe_frames
        if d.empty:
            raise ValueError("no 3D errors: adapt_to_rig ran with lift_3d=False")
        base = d[d.method == BASELINE].set_index("frame")
        ours = _method_rows(d, method, against_baseline=True)
        trials = ours.trial.to_numpy()
        return stats.paired_bootstrap(ours.mpjpe_mm.to_numpy(), base.loc[ours.frame].mpjpe_mm.to_numpy(),
                                      clusters=trials if len(set(trials)) > 1 else None, seed=seed)

    def comparison(self, seed: int = 0) -> pd.DataFrame:
        """NoFusion, the epipolar fusion and MetaFuse^K side by side on the test frames, one row each: ``method``,
        ``k``, ``jdr`` (mean JDR at half a head, fraction), ``jdr_gain_points`` with ``jdr_ci_low/high`` (against
        NoFusion, paired 95 % bootstrap), ``mpjpe_mm`` (RPSM), ``mpjpe_diff_mm`` with ``mpjpe_ci_low/high``."""
        mean = self.mean_jdr()
        mean = mean[mean.joint == "mean"].set_index("method").jdr
        rows = []
        for method in COMPARED:
            row = dict(method=self.label(method), k=self.k if method == METHOD else 0, jdr=float(mean[method]))
            iv = None if method == BASELINE else self.gain_interval("mean", seed, method)
            row.update(jdr_gain_points=iv.diff if iv else 0.0, jdr_ci_low=iv.low if iv else 0.0,
                       jdr_ci_high=iv.high if iv else 0.0)
            if not self.mpjpe_frames.empty:
                err = _method_rows(self.mpjpe_frames, method).mpjpe_mm
                iv = None if method == BASELINE else self.mpjpe_interval(method, seed)
                row.update(mpjpe_mm=float(err.mean()), mpjpe_diff_mm=iv.diff if iv else 0.0,
                           mpjpe_ci_low=iv.low if iv else 0.0, mpjpe_ci_high=iv.high if iv else 0.0)
            rows.append(row)
        return pd.DataFrame(rows)

    def recommendation(self, seed: int = 0) -> tuple[str, str]:
        """(method, why) chosen by the 3D evidence, the rule stated before any number: among the fusions whose MPJPE
        − NoFusion interval lies wholly below zero, the one with the lowest MPJPE; NoFusion when none does (a
        difference inside the noise of these test frames is no reason to fuse). Without 3D errors, the same rule on
        the JDR gain (interval wholly above zero, highest JDR)."""
        table = self.comparison(seed).set_index("method")
        three_d = "mpjpe_mm" in table
        key, better = ("mpjpe", "below") if three_d else ("jdr_gain_points", "above")
        lo, hi = (table.mpjpe_ci_low, table.mpjpe_ci_high) if three_d else (table.jdr_ci_low, table.jdr_ci_high)
        wins = table[(hi < 0) if three_d else (lo > 0)].drop(index=BASELINE, errors="ignore")
        if wins.empty:
            return BASELINE, (f"no fusion's paired interval lies wholly {better} NoFusion's "
                              f"{'3D error' if three_d else 'JDR'} on these test frames")
        best = (wins.mpjpe_mm.idxmin() if three_d else wins.jdr.idxmax())
        r = table.loc[best]
        what = (f"{r.mpjpe_diff_mm:+.1f} mm [{r.mpjpe_ci_low:+.1f}, {r.mpjpe_ci_high:+.1f}] of 3D error"
                if three_d else f"{r.jdr_gain_points:+.2f} [{r.jdr_ci_low:+.2f}, {r.jdr_ci_high:+.2f}] JDR points")
        return best, f"{best}: {what} against NoFusion ({key}; 95 % paired interval), the best of the fusions whose " \
                     f"interval lies wholly {better} zero"

    def table(self, joints=TABLE_JOINTS) -> pd.DataFrame:
        """One row per joint: NoFusion, EpipolarFusion (where measured), MetaFuse^K and the gain (MetaFuse^K −
        NoFusion), JDR fractions."""
        d = self.mean_jdr()
        d = d[d.joint.isin(joints)]
        wide = d.pivot(index="joint", columns="method", values="jdr").reindex(list(joints))
        out = pd.DataFrame({self.label(m): wide[m] for m in COMPARED if m in wide})
        out["gain"] = out[self.label(METHOD)] - out[BASELINE]
        return out


def _method_rows(d: pd.DataFrame, method: str, against_baseline: bool = False) -> pd.DataFrame:
    """The rows of ``method``; one compared with NoFusion must be another method."""
    if method not in COMPARED or (against_baseline and method == BASELINE):
        choices = COMPARED[1:] if against_baseline else COMPARED
        raise ValueError(f"method must be one of {', '.join(choices)}{f' (compared with {BASELINE})' if against_baseline else ''}, "
                         f"got {method!r}")
    rows = d[d.method == method]
    if rows.empty:
        raise ValueError(f"no rows of {method!r}; measured: {sorted(d.method.unique())}")
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# input validation


def _as_profile(profile) -> Profile:
    return get_profile(profile) if isinstance(profile, str) else profile


def _as_device(device) -> torch.device:
    return resolve_device(device) if isinstance(device, str) else torch.device(device)


def max_shots(profile) -> int:
    """The largest K a profile allows: its labelled pool, ``profile.metafuse.target_train_frames``."""
    return _as_profile(profile).metafuse.target_train_frames


def check_k(k, profile) -> int:
    """K as an int in 1..:func:`max_shots`; anything else is a ``ValueError`` naming K and the range."""
    prof = _as_profile(profile)
    top = max_shots(prof)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= top:
        raise ValueError(f"K={k!r} labelled frames is not possible with profile {prof.name!r}: K must be an integer "
                         f"in 1..{top} (the profile's labelled pool, profile.metafuse.target_train_frames)")
    return k


def load_target_rig(rig_or_path, profile, **read_options) -> studio.Rig:
    """The rig to adapt to, validated as a rig file is, imaged at ``profile.studio.image_px``.

    ``rig_or_path``: a path to a ``.yaml``/``.yml``/``.json`` rig file (:func:`mfcore.studio.load_rig`), to any
    calibration :mod:`mfcore.calibration` reads (OpenCV, COLMAP, Anipose, Panoptic, H36M-style, EasyMocap; format
    detected, converted to the book's frame by its stated rules), or a :class:`mfcore.studio.Rig` (checked by the same
    validator). ``read_options``: :func:`mfcore.calibration.read_rig`'s (``units``, ``scale``, ``baseline``, ``up``,
    ``cameras``, ``format``). A missing file, a bad rig (fewer than 2 cameras, a non-rotation R, a camera that does not
    see the whole capture volume, …) raise ``ValueError`` naming the file, camera and value.
    """
    prof = _as_profile(profile)
    if isinstance(rig_or_path, studio.Rig):
        rig = studio.rig_from_dict(studio.rig_numbers(rig_or_path), source=f"<rig {rig_or_path.name!r}>")
    elif isinstance(rig_or_path, (str, os.PathLike)):
        rig = calibration.read_rig(rig_or_path, **read_options).rig  # format detected by name and content
    else:
        raise ValueError(f"expected a rig file path or a mfcore.studio.Rig, got {type(rig_or_path).__name__}: "
                         f"{rig_or_path!r}")
    return rig.at_resolution(prof.studio.image_px)


# ----------------------------------------------------------------------------------------------------------------------
# data of the rig (cached)


def rig_heatmaps(rig: studio.Rig, profile, seed: int, device) -> tuple[dict, dict]:
    """(labelled pool, test set) of a rig: :func:`mfcore.backbone.cached_heatmaps` of training motions
    (``target_train_frames``, seed + 1) and test motions (``target_test_frames``, seed + 2) with the warm-up backbone
    of ``seed``."""
    prof = _as_profile(profile)
    m = prof.metafuse
    train = backbone.cached_heatmaps(rig, "train", m.target_train_frames, prof, seed + 1, device, backbone_seed=seed)
    test = backbone.cached_heatmaps(rig, "test", m.target_test_frames, prof, seed + 2, device, backbone_seed=seed)
    return train, test


# ----------------------------------------------------------------------------------------------------------------------
# adaptation


_BASELINES: dict = {}  # one slot: the last rig's NoFusion and epipolar-fusion rows (chapter 8 adapts at 3 K values)


def _baseline_rows(rig: studio.Rig, test: dict, prof: Profile, seed: int, dev: torch.device, lift_3d: bool) -> dict:
    """NoFusion's and the epipolar fusion's JDR rows, per-frame detections and per-frame RPSM errors on the test
    frames; kept for the next call on the same rig, test frames and sizes (one slot)."""
    key = (studio.rig_digest(rig), repr(prof), seed, str(dev), tuple(test["pred"].shape),
           float(test["pred"].sum(dtype=torch.float64)), lift_3d)
    if _BASELINES.get("key") == key:
        return _BASELINES["rows"]
    image_px = prof.studio.image_px
    epipolar = maml.fuse_frames(lift.epipolar_fusion(rig, prof, dev), test["pred"])
    out = {"jdr": [], "frames": [], "mpjpe": []}
    for method, maps in ((BASELINE, test["pred"]), (EPIPOLAR, epipolar)):
        cols = dict(rig=rig.name, method=method, k=0, trial=0)
        out["jdr"] += metrics.jdr_rows(maps, test, image_px, **cols)
        out["frames"] += metrics.peak_jdr_frame_rows(metrics.heatmap_peaks_px(maps, image_px), test, image_px, **cols)
        if lift_3d:
            out["mpjpe"] += rpsm_error_rows(maps, test, prof, seed, dev, **cols)
    _BASELINES.update(key=key, rows=out)
    return out


def rpsm_error_rows(heatmaps, test: dict, profile, seed: int, device, **columns) -> list[dict]:
    """Per-frame 3D error after the RPSM (:func:`mfcore.pictorial.estimate_3d`, limb lengths of training motions,
    :func:`mfcore.lift.limb_stats`) of (N, V, J, h, w) heatmaps of a rig's test frames: rows ``{**columns, frame,
    mpjpe_mm}``."""
    s = profile.studio
    P_hm = pictorial.heatmap_projections(test["projections"], s.image_px, s.heatmap_px).to(device)
    pose = lift.estimate_block(heatmaps.to(device), P_hm, lift.limb_stats(profile, seed), profile.pictorial,
                               ("rpsm",))["rpsm"]
    err = metrics.mpjpe_mm(pose.cpu().double(), test["joints_3d_m"].double())
    return [{**columns, "frame": i, "mpjpe_mm": float(e)} for i, e in enumerate(err.tolist())]


def adapt_to_rig(rig_or_path, k: int, profile="smoke", seed: int = 0, device="auto", *, trials: int = 1,
                 progress: bool = False, lift_3d: bool = True, read_options: dict | None = None,
                 say=None) -> AdaptResult:
    """MetaFuse^K on a rig of your own (Sec. 4.3 of MetaFuse): finetune θ of the meta-trained model on K labelled frames
    of the rig, and its JDR on the rig's test frames against NoFusion.

    ``rig_or_path``: a rig file or :class:`mfcore.studio.Rig`; ``k``: labelled frames, 1..``max_shots(profile)``;
    ``profile``: name or :class:`mfcore.profiles.Profile`; ``device``: "auto"/"cpu"/"cuda" or a torch device;
    ``trials``: independent draws of the K frames (trial ``i`` draws with seed ``seed + 100 i + k``, as chapter 4).
    NoFusion and the epipolar fusion from the calibration are measured on the same test frames; ``lift_3d`` adds the
    3D error after the RPSM of every method (:meth:`AdaptResult.comparison`). ``read_options``: how to read a
    calibration file (:func:`load_target_rig`); ``say``: a function called with a line before each long step.
    ω_base stays bit-identical to the meta-trained one. Bad input raises ``ValueError`` before any work.
    """
    prof = _as_profile(profile)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    k = check_k(k, prof)
    dev = _as_device(device)
    rig = load_target_rig(rig_or_path, prof, **(read_options or {}))
    image_px = prof.studio.image_px
    say = say or (lambda line: None)

    say(f"rendering {prof.metafuse.target_train_frames} labelled and {prof.metafuse.target_test_frames} test frames "
        f"in the {rig.num_views} cameras and running the warm-up backbone on them (cached; the first time also warms "
        f"the backbone up)")
    train, test = rig_heatmaps(rig, prof, seed, dev)
    pool = train["pred"].shape[0]
    say("NoFusion and the epipolar fusion from the calibration on the test frames" + (" (2D, and 3D after the RPSM)"
                                                                                        if lift_3d else ""))
    base = _baseline_rows(rig, test, prof, seed, dev, lift_3d)
    rows, frames, errors = list(base["jdr"]), list(base["frames"]), list(base["mpjpe"])
    seconds, kept = [], None
    for trial in range(trials):
        say(f"MetaFuse^{k}, trial {trial + 1} of {trials}: the meta-trained model (cached; the first time meta-trains "
            f"it), θ finetuned on {k} labelled frames")
        # the book's one meta-testing recipe (chapter 04 uses the same function): θ finetuned on K pool frames
        model, sec = fewshot.finetune_on_pool(METHOD, k, train, trial, prof, seed, dev, progress=progress)
        seconds.append(sec)
        fused = maml.fuse_frames(model, test["pred"])
        cols = dict(rig=rig.name, method=METHOD, k=k, trial=trial)
        rows += metrics.jdr_rows(fused, test, image_px, **cols)
        frames += metrics.peak_jdr_frame_rows(metrics.heatmap_peaks_px(fused, image_px), test, image_px, **cols)
        if lift_3d:
            errors += rpsm_error_rows(fused, test, prof, seed, dev, **cols)
        if kept is None:
            kept = (model.freeze(), fewshot.select_shots(pool, k, seed + 100 * trial + k))
    table = pd.DataFrame(rows)[["rig", "method", "k", "trial", "joint", "jdr", "threshold"]]
    return AdaptResult(rig=rig, k=k, model=kept[0], jdr=table, finetune_s=seconds, shots=kept[1],
                       pool_frames=pool, test_frames=test["pred"].shape[0], profile=prof.name,
                       frames=pd.DataFrame(frames), mpjpe_frames=pd.DataFrame(errors))


# ----------------------------------------------------------------------------------------------------------------------
# adapted parameters on disk


def save_adapted(model: fusion.AffineFuse, path) -> Path:
    """Write the adapted fusion parameters (the state_dict: ``omega_base`` (H, W), ``theta`` (P, H·W, 2, 3)) with
    ``torch.save``, atomically (temporary file + rename)."""
    if not isinstance(model, fusion.AffineFuse):
        raise ValueError(f"expected an adapted AffineFuse/MetaFuse model, got {type(model).__name__}")
    path = Path(path)
    atomic_torch_save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, path)
    return path


def as_rig(rig_or_path, **read_options) -> studio.Rig:
    """A :class:`mfcore.studio.Rig` as it is, a built-in rig by name, or any calibration file or folder
    (:func:`mfcore.calibration.read_rig` with ``read_options``)."""
    if isinstance(rig_or_path, studio.Rig):
        return rig_or_path
    name = str(rig_or_path)
    builtin = name in ("dome", "h36m", "totalcapture") or (name.startswith("h36m_s") and name[6:].isdigit())
    return studio.get_rig(name) if builtin else calibration.read_rig(rig_or_path, warn=False, **read_options).rig


def load_adapted(path, rig, device="cpu", **read_options) -> fusion.AffineFuse:
    """The adapted fusion model of a rig from :func:`save_adapted`'s file (``torch.load(..., weights_only=True)``).

    ``rig``: the rig the parameters were adapted to — a :class:`mfcore.studio.Rig`, a built-in rig's name, or the
    calibration file or folder it came from in any format :mod:`mfcore.calibration` reads (``read_options`` as
    :func:`mfcore.calibration.read_rig`'s, e.g. ``scale=`` for a COLMAP model); its number of views must match the
    file's pairs. The model is frozen (eval mode, no gradients).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"adapted-parameter file {str(path)!r} does not exist")
    rig = as_rig(rig, **read_options)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"adapted-parameter file {str(path)!r} cannot be read: {err}") from None
    if not isinstance(state, dict) or set(state) != set(ADAPTED_KEYS):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"adapted-parameter file {str(path)!r} must hold exactly {list(ADAPTED_KEYS)}, got {got}")
    omega, theta = state["omega_base"], state["theta"]
    side = omega.shape[-1]
    pairs = rig.num_views * (rig.num_views - 1)
    if omega.dim() != 2 or omega.shape[0] != side or theta.shape != (theta.shape[0], side * side, 2, 3):
        raise ValueError(f"adapted-parameter file {str(path)!r}: omega_base {tuple(omega.shape)} and theta "
                         f"{tuple(theta.shape)} are not the shapes (H, H) and (P, H*H, 2, 3) of an AffineFuse model")
    if theta.shape[0] != pairs:
        raise ValueError(f"adapted-parameter file {str(path)!r} holds {theta.shape[0]} ordered pairs, but rig "
                         f"{rig.name!r} has {rig.num_views} views = {pairs} ordered pairs")
    model = fusion.AffineFuse(rig.num_views, side)
    model.load_state_dict(state)
    return model.to(device).freeze()
