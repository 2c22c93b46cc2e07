"""The scorecard reads the chapters' per-frame tables: every claim is a paired comparison on the same frames, decided
by its 95 % bootstrap interval (yes / no / tie); a missing chapter is 'not run', never a made-up value."""

import numpy as np
import pandas as pd
import pytest

from mfcore import claims

JOINTS = ("mean", "wrist", "elbow", "knee", "ankle")
FRAMES, COUNTED = 20, 1000  # per frame: 1000 counted joints, so every rate below is a whole number of detections


def jdr_frames(meta_gain_at: str = "wrist", naive50: float = 0.70, meta500: float = 0.905, rig="h36m_s9",
               meta_noise: float = 0.0) -> pd.DataFrame:
    """Per-frame detections whose pooled JDRs are the rates below (constant over frames unless ``meta_noise``: then
    MetaFuse alternates ± that rate around its value, frame by frame)."""
    rows = []

    def add(method, k, joint, rate, noise=0.0):
        for f in range(FRAMES):
            r = rate + (noise if f % 2 else -noise)
            rows.append(dict(rig=rig, method=method, k=k, trial=0, frame=f, joint=joint,
                             detected=round(r * COUNTED), counted=COUNTED))

    for joint in JOINTS:
        add("NoFusion", 0, joint, 0.80)
        add("NaiveFuseFull", 500, joint, 0.90)
        for k in (50, 100, 200, 500):
            gain = 0.05 if joint in (meta_gain_at, "mean") else 0.01
            add("MetaFuse", k, joint, meta500 if (k == 500 and joint == "mean") else 0.80 + gain + k / 1e4, meta_noise)
            add("AffineFuse", k, joint, 0.78 + k / 1e4)
            add("NaiveFuse", k, joint, naive50 + k / 1e4)
            add("NaiveFuseMeta", k, joint, 0.75)
    return pd.DataFrame(rows)


def write(tmp_path, rel, df):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def card(tmp_path) -> pd.DataFrame:
    c = claims.scorecard(tmp_path)
    assert list(c.columns) == list(claims.SCORECARD_COLUMNS)
    assert list(c.columns[:9]) == ["claim_id", "paper", "claim", "paper_value", "our_value", "holds", "ci_low",
                                   "ci_high", "n"]
    return c


def verdicts(tmp_path) -> dict:
    c = card(tmp_path)
    return dict(zip(c.claim_id, c.holds))


def test_missing_chapters_are_not_run(tmp_path):
    c = card(tmp_path)
    assert set(c.holds) == {"not run"} and c.ci_low.isna().all()


@pytest.mark.parametrize("damage", ["extra_fields", "empty_file", "header_only", "binary"])
def test_a_corrupted_table_is_one_line_naming_the_file_and_the_chapter_to_execute_again(tmp_path, damage):
    results = tmp_path / "results" / "smoke"
    write(results, claims.JDR_FRAMES, jdr_frames())
    path = results / claims.JDR_FRAMES
    text = path.read_text()
    path.write_bytes({"extra_fields": (text + "h36m_s9,MetaFuse,50,0,1,mean,3,4,5,6,7,8\n" * 3).encode(),
                      "empty_file": b"",
                      "header_only": text.splitlines()[0].encode() + b"\n",
                      "binary": b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00" * 20}[damage])
    with pytest.raises(claims.UnreadableTable) as info:
        claims.scorecard(results)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "execute chapter 04_few_shot_curves again" in message
    assert f"--profile smoke --only 04_few_shot_curves --results {tmp_path / 'results'}" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no pandas traceback chained


def test_fig7_claims_on_a_table_where_they_hold(tmp_path):
    write(tmp_path, claims.JDR_FRAMES, jdr_frames())
    c = card(tmp_path).set_index("claim_id")
    for cid in ("MF-fig7-order", "MF-fig7-naive50", "MF-fig7-meta50", "MF-fig7-joints", "MF-fig7-500", "MF-naive-meta",
                "MF-fig7-trend"):
        assert c.loc[cid, "holds"] == "yes", cid
    # constant per-frame differences: the interval is the difference itself (MetaFuse^50 − NoFusion = 5.5 points)
    assert c.loc["MF-fig7-meta50", "ci_low"] == pytest.approx(5.5) and c.loc["MF-fig7-meta50", "ci_high"] == pytest.approx(5.5)
    assert c.loc["MF-fig7-meta50", "n"] == FRAMES and c.loc["MF-fig7-meta50", "unit"] == "points"


def test_fig7_claims_fail_when_the_numbers_say_so(tmp_path):
    write(tmp_path, claims.JDR_FRAMES, jdr_frames(meta_gain_at="knee", naive50=0.85, meta500=0.85))
    v = verdicts(tmp_path)
    assert v["MF-fig7-joints"] == "no"  # the largest gain is at the knees
    assert v["MF-fig7-naive50"] == "no"  # NaiveFuse^50 above NoFusion
    assert v["MF-fig7-500"] == "no"  # 5 points from NaiveFuse^full


def test_a_difference_the_frames_cannot_resolve_is_a_tie(tmp_path):
    t = jdr_frames(meta_noise=0.1)  # MetaFuse ±10 points frame by frame around +5.5: mean shift, wide spread
    meta = (t.method == "MetaFuse") & (t.joint == "mean")
    noise = np.where(t.loc[meta, "frame"] % 2, 1, -1) * 0.1
    t.loc[meta, "detected"] = np.round((0.80 + 0.002 + noise) * COUNTED).astype(int)  # +0.2 points, ±10 per frame
    write(tmp_path, claims.JDR_FRAMES, t)
    c = card(tmp_path).set_index("claim_id")
    assert c.loc["MF-fig7-meta50", "holds"] == "tie"
    assert c.loc["MF-fig7-meta50", "ci_low"] < 0 < c.loc["MF-fig7-meta50", "ci_high"]
    para = claims.claim_paragraph(c.reset_index().set_index("claim_id", drop=False).loc["MF-fig7-meta50"])
    assert "covers" in para and "n = 20" in para and claims.REASONS["MF-fig7-meta50"] in para


def test_only_the_headline_split_counts(tmp_path):
    test = jdr_frames().assign(split="test")
    stress = jdr_frames(naive50=0.95).assign(split="stress")  # NaiveFuse far above NoFusion on the stress frames
    write(tmp_path, claims.JDR_FRAMES, pd.concat([test, stress], ignore_index=True))
    assert verdicts(tmp_path)["MF-fig7-naive50"] == "yes"


def mpjpe_frames(savgol_gain_gt=5.0, savgol_gain_meta=-1.0) -> pd.DataFrame:
    rows = []

    def add(rig, method, k, estimator, mm, trials=1, smoothing="not a sequence"):
        for trial in range(trials):
            for f in range(FRAMES):
                rows.append(dict(rig=rig, method=method, k=k, paper_k=k, trial=trial, estimator=estimator,
                                 smoothing=smoothing, frame=f, mpjpe_mm=mm + (f % 3) * 0.01))

    for e in ("psm", "rpsm"):
        add("h36m", "NoFusion", 0, e, 50 + (e == "psm") * 5)
        add("h36m", "GroundTruth2D", 0, e, 20 - (e == "psm") * 10)  # RPSM worse on GT2D: must not be read
        for k in (50, 100, 500):
            add("h36m", "MetaFuse", k, e, 45 - k / 100 + (e == "psm") * 5)
    for m, k, v in [("NoFusion", 0, 40.5), ("MetaFuse", 50, 37.3), ("MetaFuse", 200, 31.8), ("NaiveFuse", 50, 43.4),
                    ("NaiveFuse", 200, 35.6)]:
        add("dome_heldout", m, k, "rpsm", v, trials=2)
    for method, gain in (("GroundTruth2D", savgol_gain_gt), ("MetaFuse", savgol_gain_meta)):
        add("totalcapture", method, 500, "rpsm", 40, smoothing="none")
        add("totalcapture", method, 500, "rpsm", 40 - gain, smoothing="savgol")
    return pd.DataFrame(rows)


def test_3d_claims_read_rpsm_rows_and_never_the_ground_truth_2d(tmp_path):
    write(tmp_path, claims.MPJPE_FRAMES, mpjpe_frames())
    c = card(tmp_path).set_index("claim_id")
    assert c.loc["MF-table2", "holds"] == c.loc["MF-panoptic", "holds"] == c.loc["CV-rpsm", "holds"] == "yes"
    assert c.loc["CV-rpsm", "ci_high"] == pytest.approx(-5.0)  # the methods' RPSM − PSM, GroundTruth2D left out
    assert c.loc["MF-savgol", "holds"] == "no"  # MetaFuse's own walking error rises 1 mm; the GT2D oracle's falls
    assert c.loc["MF-savgol", "ci_low"] == pytest.approx(1.0)
    assert c.loc["MF-panoptic", "n"] == 2 * FRAMES  # frames of both camera draws


def test_3d_ties_when_the_difference_is_within_the_frame_spread(tmp_path):
    rows = []
    for method, k, base in (("NoFusion", 0, 110.93), ("MetaFuse", 50, 110.9), ("MetaFuse", 100, 110.89),
                            ("MetaFuse", 500, 110.88)):
        rows += [dict(rig="h36m", method=method, k=k, paper_k=k, trial=0, estimator="rpsm", frame=f,
                      mpjpe_mm=base + (5 if f % 2 else -5)) for f in range(FRAMES)]
    write(tmp_path, claims.MPJPE_FRAMES, pd.DataFrame(rows))
    assert verdicts(tmp_path)["MF-table2"] == "yes"  # paired: the ±5 mm frame spread cancels in the differences
    rows = pd.DataFrame(rows)
    rows.loc[rows.method == "MetaFuse", "mpjpe_mm"] += np.where(rows.frame[rows.method == "MetaFuse"] % 4 < 2, 3, -3)
    write(tmp_path, claims.MPJPE_FRAMES, rows)
    assert verdicts(tmp_path)["MF-table2"] == "tie"  # differences of ±3 mm per frame around 0.03 mm


def test_trainable_fusion_claims(tmp_path):
    methods = ["ImageOnly", "CMOnly", "EarlyFusion", "LateFusion", "TrainableFusion"]

    def samples(means, seeds=1):
        return pd.DataFrame([dict(seed=s, method=m, sample=i, mpjpe_mm=v + (i % 4), pa_mpjpe_mm=1.0)
                             for s in range(seeds) for m, v in zip(methods, means) for i in range(40)])

    write(tmp_path, claims.ABLATION_SAMPLES, samples([90, 80, 70, 75, 60], seeds=2))
    write(tmp_path, "06_trainable_fusion/fusion_parameters.csv", pd.DataFrame(dict(
        run=["λ = 0"] * 2 + ["λ = 0.05"] * 2, step=[1, 2, 1, 2], alpha=[0.1, 0.01, 0.1, 2.0], beta=[3, 2, 3, 5],
        data_loss=[1, 1, 1, 1], penalty=[0, 0, 5, 0.01])))
    write(tmp_path, "06_trainable_fusion/stream_correlation.csv",
          pd.DataFrame(dict(block=["image-image", "cm-cm", "image-cm"], mean_r2=[0.3, 0.2, 0.01])))
    c = card(tmp_path).set_index("claim_id")
    assert (c.loc[["TK-table5", "TK-alpha", "TK-beta", "TK-decorrelation"], "holds"] == "yes").all()
    assert c.loc["TK-table5", "ci_high"] == pytest.approx(-10.0)  # the least certain pair: EarlyFusion, 10 mm
    assert pd.isna(c.loc["TK-alpha", "ci_low"])  # one training run: no interval
    write(tmp_path, claims.ABLATION_SAMPLES, samples([90, 80, 50, 75, 60]))
    assert verdicts(tmp_path)["TK-table5"] == "no"  # early fusion is better
    # several seeds: α and β are the mean over seeds of the first run with the penalty (the paper's rate)
    write(tmp_path, "06_trainable_fusion/fusion_parameters.csv", pd.DataFrame(dict(
        run=["λ = 0.5"] * 4 + ["λ = 0.5, fast"] * 2, seed=[0, 0, 1, 1, 0, 0], step=[1, 2, 1, 2, 1, 2],
        alpha=[0.1, 0.3, 0.1, 0.05, 0.1, 0.01], beta=[3, 2, 3, 3, 3, 9], data_loss=[1] * 6, penalty=[50] * 6)))
    c = card(tmp_path).set_index("claim_id")
    assert c.loc["TK-alpha", "holds"] == "tie" and "mean of 2 seeds" in c.loc["TK-alpha", "our_value"]  # +0.2, −0.05
    assert c.loc["TK-beta", "holds"] == "no"  # seed 0 moves earlier, seed 1 stays: no seed moves later
    # every seed moves β later, but by less than half a layer: the fusion layer kept by pruning does not change
    write(tmp_path, "06_trainable_fusion/fusion_parameters.csv", pd.DataFrame(dict(
        run=["λ = 0.5"] * 6, seed=[0, 0, 1, 1, 2, 2], step=[1, 260] * 3, alpha=[0.1, 0.23] * 3,
        beta=[4, 4.008, 4, 4.01, 4, 4.6], data_loss=[1] * 6, penalty=[50] * 6)))
    c = card(tmp_path).set_index("claim_id")
    assert c.loc["TK-alpha", "holds"] == "yes"  # every seed
    assert c.loc["TK-beta", "holds"] == "tie" and "+0.008 to +0.6" in c.loc["TK-beta", "our_value"]


def test_fig7_findings_are_checked_per_rig_with_intervals():
    good = jdr_frames()
    other_rig = jdr_frames(meta_gain_at="knee", rig="dome_heldout")
    table = claims.fig7_findings(pd.concat([good, other_rig], ignore_index=True))
    assert list(table.rig.unique()) == ["h36m_s9", "dome_heldout"]
    assert set(table[table.rig == "h36m_s9"].holds) == {"yes"}
    assert (table.possible_reason == "").sum() == (table.holds == "yes").sum()
    joints = table[(table.rig == "dome_heldout") & (table.claim_id == "MF-fig7-joints")].iloc[0]
    assert joints.holds == "no" and joints.possible_reason and joints.ci_high < 0
    assert set(table.claim_id) == {c.claim_id for c in claims.CLAIMS if c.evidence == claims.JDR}
    assert {"ci_low", "ci_high", "n"} <= set(table.columns)


def test_a_chapter_section_lists_its_claims_and_explains_each_that_does_not_hold():
    rows, text = claims.claims_section({claims.JDR_FRAMES: jdr_frames(meta_gain_at="knee")})
    assert set(rows.claim_id) == {c.claim_id for c in claims.CLAIMS if c.evidence == claims.JDR}
    assert "**MF-fig7-joints**" in text and "other side" in text
    assert "**MF-fig7-meta50**" not in text  # it holds


def test_chapter_5_reads_each_side_of_a_comparison_with_its_own_smoothing():
    frames = mpjpe_frames()
    iv = claims.mm_interval(frames, "totalcapture", ("MetaFuse", 500, "savgol"), ("MetaFuse", 500, "none"), k_column="k")
    assert (iv.diff, iv.n) == (pytest.approx(1.0), FRAMES)
    iv = claims.mm_interval(frames, "h36m", ("MetaFuse", 500), ("NoFusion", 0))
    assert iv.low == pytest.approx(-10.0) and iv.high == pytest.approx(-10.0)


def test_the_savgol_interval_resamples_blocks_of_consecutive_walking_frames():
    frames = mpjpe_frames(savgol_gain_meta=2.0)
    iv = claims.savgol_interval(frames, "MetaFuse")
    blocks = -(-FRAMES // claims.WALK_BLOCK_FRAMES)  # ceil: the clip's frames in blocks of the filter's window
    assert (iv.diff, iv.n, iv.clusters) == (pytest.approx(-2.0), FRAMES, blocks)
    assert iv.low == pytest.approx(-2.0) and iv.high == pytest.approx(-2.0)  # the same gain on every frame
    assert claims.savgol_interval(frames, "GroundTruth2D").diff == pytest.approx(-5.0)
