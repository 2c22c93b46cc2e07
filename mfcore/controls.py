"""Chapter 4c: the controls that decide MetaFuse, run as its plan registered them (``notebooks/10_metafuse_decided.py``).

* :func:`control_settings` — every setting of the plan: for each reading of the objective (:mod:`mfcore.objectives`,
  ``profile.controls.variants``) and each training seed, NaiveFuse^full, the factorised model of Eq. (2) trained on the
  whole pool from three θ starts (AffineFuse^full: :data:`AFFINE_FULL`), MetaFuse^K at every K; MetaFuse^K also from
  meta-training in the paper's regime and with the second-order terms (variant (a), ``controls.regime_seeds``).
  They run through :func:`mfcore.fewshot.few_shot_curves`: the same frames, steps, rates and caches as chapter 4
  (variant (a) of chapter 4's settings is chapter 4's entries themselves).
* :func:`variants_table` — ``metafuse_variants.csv``: per variant, rig, method, K and seed ("all": pooled, the interval
  clustered by seed and clip) the JDR and its paired difference from NoFusion with the 95 % interval.
* :func:`decide` — the plan's decision rule, from that table.
* :func:`seconds_by_method` / :func:`phase_seconds` — where :func:`run_controls`' wall time goes (its ``timings``).
* :func:`theta_moves` / :func:`omega_profile` — how far meta-testing moved θ, and the meta-learned base map's line.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import torch

from . import fewshot, objectives, pretrained
from .claims.fig7 import paired_jdr
from .fewshot import Setting
from .targets import FIG7_TARGETS

AFFINE_FULL = ("AffineFuseFull", "AffineFuseFullCentred", "AffineFuseFullLines")
START_NAMES = {"AffineFuseFull": "identity θ", "AffineFuseFullCentred": "θ centred on each pixel",
               "AffineFuseFullLines": "θ on the pool's epipolar lines"}
REGIMES = ("a-paper", "a-second")
K50 = 50  # the paper's K of the decision rule (MetaFuse^50)
REPRODUCED_POINTS = 0.0  # 1. MetaFuse^50 − NoFusion above 0 on both rigs under a variant
CAN_FUSE_POINTS = 2.0  # 2. AffineFuse^full − NoFusion at least +2 points ...
HALF_ELBOW_POINTS = 1.3  # ... while every variant's MetaFuse^50 − NoFusion interval excludes +1.3 (half of 83.7 → 86.3)
BOTTLENECK_POINTS = 1.0  # 3. AffineFuse^full − NoFusion below +1 under every variant and start, while Eq. (2) on the
ORACLE_CLOSE_POINTS = 1.0  # oracle's lines scores within 1 point of the oracle
TABLE_COLUMNS = ("variant", "rig", "method", "k", "seed", "jdr", "delta_points", "ci_low", "ci_high", "n")


def controls_profile(profile):
    """The profile chapter 4c runs under: ``profile`` with its fusion seeds cut to the first ``controls.seeds`` (where
    they are all of them, variant (a)'s settings are chapter 4's cached models themselves)."""
    c, m = profile.controls, profile.metafuse
    seeds = tuple(m.fusion_seeds[:c.seeds])
    return profile if seeds == tuple(m.fusion_seeds) else dataclasses.replace(
        profile, metafuse=dataclasses.replace(m, fusion_seeds=seeds))


def regime_variants(profile) -> tuple[str, ...]:
    """The meta-training controls of variant (a) this profile runs: the paper's regime, and second order if set."""
    return ("a-paper",) + (("a-second",) if profile.controls.second_order else ())


def control_settings(profile) -> list[Setting]:
    """Every setting of chapter 4c's plan (NoFusion once: it is the backbone's own heatmaps)."""
    m, c = profile.metafuse, profile.controls
    pool, seeds = m.target_train_frames, list(m.fusion_seeds)
    for v in c.variants:
        objectives.get_variant(v)
    out = [Setting("NoFusion", 0)]
    for v in c.variants:
        for i, fs in enumerate(seeds):
            if v == objectives.DEFAULT_VARIANT or i < c.full_seeds:  # (a)'s NaiveFuse^full: chapter 4's own models
                out.append(Setting("NaiveFuseFull", pool, fs, v))
            if i < c.full_seeds:
                out += [Setting(a, pool, fs, v) for a in AFFINE_FULL]
            out += [Setting("MetaFuse", k, fs, v) for k in m.shots]
    for v in regime_variants(profile):
        out += [Setting("MetaFuse", k, fs, v) for fs in seeds[:c.regime_seeds] for k in m.shots]
    return out


def run_controls(profile, seed: int, device, *, progress: bool = True, timings: list | None = None) -> pd.DataFrame:
    """The per-frame detections (``jdr_frames``'s columns, plus ``variant`` and ``seed``) of every setting of
    :func:`control_settings` on the test frames of both Fig. 7 rigs (the dome's first ``controls.dome_trials`` draws).

    The pre-trained models of every (variant, method) are built (or loaded) first, all seeds of one together, then the
    settings run through :func:`mfcore.fewshot.few_shot_curves`. With ``timings`` (a list), where the wall time goes is
    appended to it: a "pre-training" row per (variant, method) with a pre-trained model (``seconds``: its build or
    load here; ``training_s``: its seeds' (meta-)training, summed, as measured when the cache entries were built) and
    a "setting" row per trained setting and rig (few_shot_curves' timing rows: ``finetune_s`` as measured when built;
    ``seconds``: the setting here, loading or finetuning alone, fusing and JDR). The rest of the call (the settings
    finetuned together on a rig's pool, the labels, NoFusion) is the caller's wall time less these rows' seconds."""
    settings = control_settings(profile)
    pre = _pretrain(settings, profile, seed, device, progress=progress)
    frames: list = []
    _, setting_rows = fewshot.few_shot_curves(profile, seed, device, settings=settings, frame_rows=frames,
                                              targets=FIG7_TARGETS, trials=profile.controls.dome_trials,
                                              progress=progress)
    if timings is not None:
        timings += pre
        timings += [{"phase": "setting", **{c: v for c, v in r.items() if c != "setting_s"}, "seconds": r["setting_s"]}
                    for r in setting_rows]
    return pd.DataFrame(frames)


def _pretrain(settings, profile, seed: int, device, *, progress: bool) -> list[dict]:
    """Build or load the pre-trained model (:mod:`mfcore.pretrained`) of every (variant, method) of ``settings`` for
    all its training seeds at once, in few_shot_curves' order (which then reads them from the cache): one "pre-training"
    timing row each (see :func:`run_controls`)."""
    rows = []
    for variant in dict.fromkeys(st.variant for st in settings if st.method != "NoFusion"):
        for method in dict.fromkeys(st.method for st in settings if st.variant == variant):
            if method not in pretrained.PRETRAINED:
                continue
            seeds = sorted({fewshot.training_seed(st, seed) for st in settings
                            if (st.method, st.variant) == (method, variant)})
            t0 = time.perf_counter()
            models = pretrained.pretrained_fusions(method, profile, seed, device, fusion_seeds=seeds, variant=variant,
                                                   progress=progress)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            rows.append(dict(phase="pre-training", variant=variant, method=method, seeds=len(seeds),
                             training_s=sum(m.training_seconds for m, _ in models), seconds=time.perf_counter() - t0))
    return rows


def seconds_by_method(timings: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, method) of :func:`run_controls`' ``timings``: its settings (one per K, seed and rig), its pre-trained
    models' (meta-)training and its settings' finetuning (seconds as measured when their cache entries were built) and
    ``seconds``: what this call spent on them (pre-training and settings), most first."""
    t = timings.assign(variant=timings.variant.fillna(""))
    pre, st = t[t.phase == "pre-training"], t[t.phase == "setting"]
    out = st.groupby(["variant", "method"], sort=False).agg(settings=("seconds", "size"),
                                                             finetune_s=("finetune_s", "sum"))
    out = out.join(pre.groupby(["variant", "method"], sort=False).training_s.sum(), how="outer")
    here = pd.concat([pre, st]).groupby(["variant", "method"], sort=False).seconds.sum()
    out = out.join(here).fillna({"settings": 0, "finetune_s": 0.0, "training_s": 0.0})
    out["settings"] = out.settings.astype(int)
    return out[["settings", "training_s", "finetune_s", "seconds"]].sort_values("seconds", ascending=False).reset_index()


def phase_seconds(timings: pd.DataFrame, wall_s: float) -> pd.DataFrame:
    """The wall time ``wall_s`` of a :func:`run_controls` call by phase: pre-training, the settings (their own
    seconds), the rest (the settings finetuned together on each rig's pool, the labels, NoFusion: ``wall_s`` less the
    two) and the whole call; ``share``: of ``wall_s``."""
    pre = float(timings.seconds[timings.phase == "pre-training"].sum())
    settings = float(timings.seconds[timings.phase == "setting"].sum())
    rows = [("pre-training", pre), ("settings", settings), ("rest", wall_s - pre - settings), ("call", wall_s)]
    return pd.DataFrame([dict(phase=p, seconds=s, share=s / wall_s if wall_s > 0 else float("nan")) for p, s in rows])


def _of_variant(frames: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The rows of one variant, with NoFusion's (untrained, the same for every variant)."""
    return frames[(frames.variant == variant) | (frames.method == "NoFusion")]


def variants_table(frames: pd.DataFrame, profile, seed: int = 0) -> pd.DataFrame:
    """``metafuse_variants.csv`` (:data:`TABLE_COLUMNS`): for every variant, rig and setting, each training seed's row
    and the seeds pooled ("all"): the pooled JDR, and JDR − NoFusion in points with its paired 95 % interval over the
    test frames (clustered by motion clip, and by seed for "all"; ``n`` frames × seeds)."""
    rows = []
    for variant in dict.fromkeys(frames.variant.dropna()):
        sub = _of_variant(frames, variant)
        for rig in FIG7_TARGETS:
            for (method, k), g in sub[(sub.rig == rig) & (sub.method != "NoFusion")].groupby(["method", "k"], sort=False):
                for s in [*sorted(g.seed.dropna().unique()), "all"]:
                    part = sub if s == "all" else sub[(sub.seed == s) | (sub.method == "NoFusion")]
                    iv, jdr, _ = paired_jdr(part, rig, (method, int(k)), ("NoFusion", 0), seed=seed)
                    rows.append(dict(variant=variant, rig=rig, method=method, k=int(k),
                                     seed=s if s == "all" else int(s), jdr=jdr, delta_points=iv.diff,
                                     ci_low=iv.low, ci_high=iv.high, n=iv.n))
        nofusion = sub[sub.method == "NoFusion"]
        for rig in FIG7_TARGETS:
            u = nofusion[(nofusion.rig == rig) & (nofusion.joint == "mean")]
            rows.append(dict(variant=variant, rig=rig, method="NoFusion", k=0, seed="all",
                             jdr=float(u.detected.sum() / max(u.counted.sum(), 1)), delta_points=0.0, ci_low=0.0,
                             ci_high=0.0, n=len(u)))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _pooled(table: pd.DataFrame) -> pd.DataFrame:
    return table[table.seed.astype(str) == "all"]


def _k50(profile) -> int:
    return fewshot.profile_k(K50, profile)


def decide(table: pd.DataFrame, profile, oracle_gap_points=None) -> dict:
    """The plan's decision (notebook 10, registered before the full runs) from :func:`variants_table`'s pooled rows.

    Returns {"outcome": 1, 2, 3 or 4, "text": a sentence, "evidence": the numbers it rests on}. ``oracle_gap_points``:
    a callable returning, per rig, (the oracle's best JDR − Eq. (2)'s JDR at the oracle's lines) in points, called only
    where outcome 3's first condition holds (it costs a fusion of the test frames)."""
    pooled, k50 = _pooled(table), _k50(profile)
    meta = pooled[(pooled.method == "MetaFuse") & (pooled.k == k50)]
    full = pooled[pooled.method.isin(AFFINE_FULL)]
    rigs = list(FIG7_TARGETS)
    variants = [v for v in dict.fromkeys(meta.variant) if v in objectives.VARIANTS]

    def on_both(rows, test) -> bool:
        by_rig = {r.rig: r for r in rows.itertuples()}
        return all(rig in by_rig and test(by_rig[rig]) for rig in rigs)

    reproduced = [v for v in variants if on_both(meta[meta.variant == v], lambda r: r.ci_low > REPRODUCED_POINTS)]
    if reproduced:
        return dict(outcome=1, variants=reproduced,
                    text=f"MetaFuse^{k50} − NoFusion has its interval above 0 on both rigs under variant(s) "
                         f"{', '.join(reproduced)}: reproduced under that reading of the objective")
    best = full.groupby(["variant", "method"]).delta_points.min().sort_values(ascending=False)  # worst rig per pair
    can_fuse = best[best >= CAN_FUSE_POINTS]
    excluded = all(on_both(meta[meta.variant == v], lambda r: r.ci_high < HALF_ELBOW_POINTS) for v in variants)
    if len(can_fuse) and excluded:
        (v, method), gain = can_fuse.index[0], float(can_fuse.iloc[0])
        return dict(outcome=2, best=(v, method), gain=gain,
                    text=f"not reproduced, and meta-learning is where it is lost: AffineFuse^full ({START_NAMES[method]}, "
                         f"variant {v}) gains at least {gain:+.2f} points over NoFusion on both rigs, while under every "
                         f"variant the interval of MetaFuse^{k50} − NoFusion lies below +{HALF_ELBOW_POINTS:g} points")
    if (full.delta_points < BOTTLENECK_POINTS).all() and oracle_gap_points is not None:
        gaps = oracle_gap_points()
        if all(abs(g) <= ORACLE_CLOSE_POINTS for g in gaps.values()):
            return dict(outcome=3, oracle_gaps=gaps,
                        text="the factorisation is the bottleneck: AffineFuse^full gains less than +1 point under every "
                             "variant and start, while Eq. (2) on the oracle's lines scores within 1 point of the "
                             "oracle: the capacity is there and training does not reach it")
    return dict(outcome=4, text="inconclusive under the plan's rule: "
                + ("no variant's MetaFuse^50 interval lies above 0 on both rigs; "
                   + ("some variant's interval still holds +1.3 points" if not excluded else
                      "every variant's interval excludes +1.3 points, but no AffineFuse^full reaches +2 on both rigs")))


def adapted_theta_shift_px(setting: Setting, target: str, trial: int, profile, seed: int, device) -> float:
    """How far meta-testing moved θ of an adapted AffineFuse/MetaFuse setting: the mean over its pairs and pixels of
    |Δ translation| in heatmap pixels, against its pre-trained start spread over the rig's pairs (the cached adapted
    parameters, :func:`mfcore.fewshot.adapted_parameters`)."""
    theta = fewshot.adapted_parameters(setting.method, setting.k, target, trial, profile, seed, device,
                                       fusion_seed=setting.fusion_seed, variant=setting.variant)["theta"]
    start = pretrained.pretrained_fusion(setting.method, profile, seed, device, fusion_seed=setting.fusion_seed,
                                         variant=setting.variant, progress=False)[0]
    shift = (theta[..., 2] - start.theta.detach().cpu()[0, ..., 2]).abs()  # (P, Z, 2) normalised units
    return float(shift.mean() * profile.studio.heatmap_px / 2)


def theta_moves(profile, seed: int, device, targets_trials=(("h36m", 0),)) -> pd.DataFrame:
    """:func:`adapted_theta_shift_px` of MetaFuse^K for every variant, seed and K (from the cached adapted models)."""
    m = profile.metafuse
    rows = []
    for st in control_settings(profile):
        if st.method != "MetaFuse":
            continue
        for target, trial in targets_trials:
            rows.append(dict(variant=st.variant, seed=st.fusion_seed, k=st.k, rig=target,
                             theta_shift_px=adapted_theta_shift_px(st, target, trial, profile, seed, device)))
    return pd.DataFrame(rows).assign(steps=m.finetune_steps)


def omega_profile(omega: torch.Tensor) -> dict:
    """The line of a base map ω (H, W): its row profile (the mean over columns), the amplitude (its largest value and
    the row's offset from the centre, in pixels), the width (the profile's σ about that row, from its second moment
    over the rows holding the half of the mass nearest to it) and the share of the map's mass within 2σ of the row."""
    w = omega.detach().double().cpu()
    h = w.shape[0]
    prof = w.mean(1)
    peak = int(prof.abs().argmax())
    rows = torch.arange(h, dtype=torch.float64)
    mass = prof.clamp_min(0)
    total = float(mass.sum())
    if total <= 0:
        return dict(amplitude=float(prof[peak]), position_px=peak - (h - 1) / 2, width_px=float("nan"),
                    near_share=float("nan"), profile=prof.numpy())
    order = (rows - peak).abs().argsort()
    near = order[: max(1, int(np.searchsorted(np.cumsum(mass[order].numpy()), total / 2)) + 1)]
    m_near = mass[near]
    centre = float((rows[near] * m_near).sum() / m_near.sum())
    width = float(((rows[near] - centre).square() * m_near).sum() / m_near.sum()).__pow__(0.5)
    within = (rows - centre).abs() <= 2 * max(width, 0.5)
    return dict(amplitude=float(prof[peak]), position_px=centre - (h - 1) / 2, width_px=width,
                near_share=float(mass[within].sum() / total), profile=prof.numpy())


def stage_evidence(table: pd.DataFrame, lines: pd.DataFrame, moves: pd.DataFrame, start_amplitude: float,
                   sigma_px: float, profile, variant: str = objectives.DEFAULT_VARIANT) -> dict:
    """What chapter 4c's "which stage loses it" reads, for one reading of the objective: from
    :func:`variants_table` (pooled rows), ``omega_lines.csv``'s rows (``lines``: the meta-learned ω_base's line per
    variant and seed, :func:`omega_profile`) and :func:`theta_moves`' rows. Returns per rig (``FIG7_TARGETS``) the
    JDR gain over NoFusion in points of NaiveFuse^full, of AffineFuse^full from each start of :data:`AFFINE_FULL`
    and of MetaFuse^50 (also under each meta-training regime of :data:`REGIMES` that ran), and, for ``variant``: the
    line amplitude of ω_base at the start (``start_amplitude``) and after meta-training (mean and range over seeds),
    and meta-testing's mean θ shift per K in heatmap pixels with the heatmaps' σ (``sigma_px``) to read it against."""
    pooled, k50 = _pooled(table), _k50(profile)

    def gain(v: str, method: str, rig: str, k: int | None = None) -> float:
        r = pooled[(pooled.variant == v) & (pooled.method == method) & (pooled.rig == rig)]
        if k is not None:
            r = r[r.k == k]
        return float(r.delta_points.iloc[0]) if len(r) else float("nan")

    gains = {rig: {"NaiveFuseFull": gain(variant, "NaiveFuseFull", rig),
                   **{m: gain(variant, m, rig) for m in AFFINE_FULL},
                   "MetaFuse50": gain(variant, "MetaFuse", rig, k50),
                   **{f"MetaFuse50 ({r})": gain(r, "MetaFuse", rig, k50) for r in REGIMES
                      if (pooled.variant == r).any()}}
             for rig in FIG7_TARGETS}
    amp = lines[lines.variant == variant].amplitude
    shift = moves[moves.variant == variant].groupby("k").theta_shift_px.mean()
    return dict(variant=variant, gains=gains, start_amplitude=float(start_amplitude),
                amplitude_mean=float(amp.mean()), amplitude_min=float(amp.min()), amplitude_max=float(amp.max()),
                theta_shift_px={int(k): float(v) for k, v in shift.items()}, sigma_px=float(sigma_px))
