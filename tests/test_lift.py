"""Your cameras and your 2D detections → 2D and 3D poses: every reader on fixtures written here, the COCO-17 /
BODY_25 / COCO-18 → H36M mapping, bad input as one line naming file, camera, frame and field, and the command end to
end, whose round trip through every format gives the book's internal pipeline's 3D poses (the smoke acceptance; the
full one is ``tools/lift_roundtrip.py``)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mfbook import lift as lift_cli
from mfcore import data, geometry, lift, metrics, motion, pictorial, profiles, skeleton, studio
from mfcore import detections as det
from mfcore.detections import conventions

CEILING5 = Path(__file__).resolve().parents[1] / "mfcore" / "rigs" / "ceiling5.yaml"
J = skeleton.JOINT_INDEX


# ----------------------------------------------------------------------------------------------------------------------
# the mapping of detector layouts to the book's body


def test_every_layout_maps_onto_all_17_joints_with_weights_summing_to_one():
    for layout, joints in det.LAYOUTS.items():
        M = det.mapping_matrix(layout)
        assert M.shape == (17, len(joints)) and np.allclose(M.sum(1), 1.0) and (M >= 0).all()
    assert np.array_equal(det.mapping_matrix("h36m17"), np.eye(17))


def test_coco17_to_h36m_pelvis_is_mid_hip_thorax_mid_shoulder_head_top_mid_eyes_and_sides_kept():
    xy = np.arange(34, dtype=float).reshape(17, 2) * np.array([1.0, 2.0])  # distinct points
    score = np.linspace(0.5, 0.9, 17)
    c = {n: i for i, n in enumerate(det.COCO17)}
    out, s = det.to_h36m(xy, score, "coco17")
    mid = lambda a, b: 0.5 * (xy[c[a]] + xy[c[b]])  # noqa: E731
    np.testing.assert_allclose(out[J["pelvis"]], mid("left_hip", "right_hip"))
    np.testing.assert_allclose(out[J["thorax"]], mid("left_shoulder", "right_shoulder"))
    np.testing.assert_allclose(out[J["spine"]], 0.5 * (mid("left_hip", "right_hip") + mid("left_shoulder",
                                                                                             "right_shoulder")))
    np.testing.assert_allclose(out[J["head_top"]], mid("left_eye", "right_eye"))
    for name in ("left_wrist", "right_wrist", "left_ankle", "right_knee", "nose"):  # left stays left
        np.testing.assert_array_equal(out[J[name]], xy[c[name]])
        assert s[J[name]] == score[c[name]]
    assert s[J["pelvis"]] == min(score[c["left_hip"]], score[c["right_hip"]])  # the weaker source


def test_body25_pelvis_is_mid_hip_thorax_is_neck_and_a_missing_source_makes_the_joint_missing():
    xy = np.random.default_rng(0).uniform(0, 500, (25, 2))
    score = np.full(25, 0.8)
    b = {n: i for i, n in enumerate(det.BODY25)}
    score[b["left_eye"]] = 0.0  # one eye not seen: no head top
    out, s = det.to_h36m(xy, score, "body25")
    np.testing.assert_array_equal(out[J["pelvis"]], xy[b["mid_hip"]])
    np.testing.assert_array_equal(out[J["thorax"]], xy[b["neck"]])
    np.testing.assert_allclose(out[J["spine"]], 0.5 * (xy[b["mid_hip"]] + xy[b["neck"]]))
    assert s[J["head_top"]] == 0.0 and (out[J["head_top"]] == 0).all()
    coco18, s18 = det.to_h36m(xy[:18], score[:18], "coco18")  # COCO-18 shares BODY_25's first 8 names but not hips
    c18 = {n: i for i, n in enumerate(det.COCO18)}
    np.testing.assert_allclose(coco18[J["pelvis"]], 0.5 * (xy[c18["left_hip"]] + xy[c18["right_hip"]]))


def test_writing_in_a_layout_and_reading_back_keeps_every_joint_the_layout_has():
    xy, score = np.random.default_rng(1).uniform(0, 900, (3, 17, 2)), np.full((3, 17), 0.7)
    for layout in ("coco17", "body25", "coco18"):
        back, s = det.to_h36m(*det.from_h36m(xy, score, layout), layout)
        one_to_one = [j for j, name in enumerate(skeleton.JOINT_NAMES) if len(conventions.MAPPINGS[layout][name]) == 1
                      and s[0, j] > 0]
        np.testing.assert_array_equal(back[:, one_to_one], xy[:, one_to_one])
        assert s[0, J["head_top"]] == 0.0  # no eyes in the book's body: written missing, read missing


# ----------------------------------------------------------------------------------------------------------------------
# readers, on fixtures written here


def _coco_dataset(path, frames, people, names=None, scores_apart=False):
    """A COCO dataset file: ``people`` = {frame index: [(xy (17, 2), score (17,), instance score), ...]}."""
    anns = []
    for i, found in people.items():
        for xy, s, conf in found:
            kp = {"keypoints": np.asarray(xy).reshape(-1).tolist(), "keypoint_scores": list(s)} if scores_apart else \
                {"keypoints": np.concatenate([xy, np.asarray(s)[:, None]], 1).reshape(-1).tolist()}
            anns.append({"image_id": i, "category_id": 1, "score": conf, **kp})
    cats = [{"id": 1, "name": "person", **({"keypoints": list(names)} if names else {})}]
    path.write_text(json.dumps({"images": [{"id": i, "file_name": f} for i, f in enumerate(frames)],
                                "annotations": anns, "categories": cats}))
    return path


def test_coco_dataset_triples_read_in_coco17_by_default_and_the_most_confident_person(tmp_path):
    a, b = np.full((17, 2), 100.0), np.full((17, 2), 300.0)
    path = _coco_dataset(tmp_path / "c1.json", ["f0.jpg", "f1.jpg", "f2.jpg"],
                         {0: [(a, np.full(17, 0.9), 0.5), (b, np.full(17, 0.8), 0.95)], 2: [(a, np.full(17, 0.6), 0.7)]})
    cam = det.read_coco(path, "c1")
    assert cam.layout == "coco17" and cam.frames == ["f0.jpg", "f1.jpg", "f2.jpg"]
    np.testing.assert_array_equal(cam.xy_px[0, J["left_wrist"]], [300.0, 300.0])  # the person of score 0.95
    assert (cam.score[1] == 0).all()  # an image without annotation: a frame without detections
    assert cam.notes == ["camera 'c1' (c1.json): 1 of 3 frames have several people; kept the most confident in each "
                         "(the person's score, else the mean of its keypoint scores)"]


def test_coco_keypoint_scores_apart_h36m_names_and_visibility_flags(tmp_path):
    xy = np.random.default_rng(2).uniform(0, 500, (17, 2))
    named = det.read_coco(_coco_dataset(tmp_path / "h.json", ["a"], {0: [(xy, [0.5] * 17, 1.0)]},
                                        names=skeleton.JOINT_NAMES, scores_apart=True))
    assert named.layout == "h36m17"
    np.testing.assert_array_equal(named.xy_px[0], xy)
    flags = np.array([2.0, 1.0, 0.0] + [2.0] * 14)  # COCO ground truth: visibility, not scores
    gt = det.read_coco(_coco_dataset(tmp_path / "gt.json", ["a"], {0: [(xy, flags, 1.0)]}))
    assert gt.score[0, J["nose"]] == 1.0 and gt.score[0, J["head_top"]] == 0.0  # right eye v=0: head top missing


def test_coco_results_list_and_mmpose_predictions(tmp_path):
    xy = np.random.default_rng(3).uniform(0, 500, (17, 2))
    triples = np.concatenate([xy, np.full((17, 1), 1.3)], 1).reshape(-1).tolist()  # a score above 1 reads as 1
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": 7, "category_id": 1, "keypoints": triples, "score": 1},
                                                 {"image_id": 3, "category_id": 1, "keypoints": triples, "score": 1}]))
    res = det.read_coco(tmp_path / "r.json")
    assert res.frames == ["3", "7"] and res.score.max() == 1.0
    (tmp_path / "m.json").write_text(json.dumps([{"frame_id": 0, "instances": [
        {"keypoints": xy.tolist(), "keypoint_scores": [0.4] * 17, "bbox_score": 0.9}]}, {"frame_id": 1, "instances": []}]))
    mm = det.read_coco(tmp_path / "m.json")
    assert mm.frames == ["0", "1"] and (mm.score[1] == 0).all()
    np.testing.assert_allclose(mm.xy_px[0, J["left_elbow"]], xy[det.COCO17.index("left_elbow")])


def _openpose(folder, frames, layout="body25", rng=None):
    rng = rng or np.random.default_rng(4)
    n = len(det.LAYOUTS[layout])
    for name, people in frames.items():
        folder.mkdir(exist_ok=True)
        body = [{"pose_keypoints_2d": np.concatenate([rng.uniform(0, 500, (n, 2)), np.full((n, 1), s)], 1)
                 .reshape(-1).tolist()} for s in people]
        (folder / f"{name}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": body}))
    return folder


def test_openpose_folder_is_read_in_frame_order_with_body25_and_coco18(tmp_path):
    folder = _openpose(tmp_path / "cam", {"v_000000000010": [0.5, 0.9], "v_000000000002": [0.7], "v_000000000003": []})
    cam = det.read_openpose(folder, "cam")
    assert cam.layout == "body25" and cam.frames == ["v_000000000002", "v_000000000003", "v_000000000010"]
    assert (cam.score[1] == 0).all() and cam.score[2].max() == 0.9 and len(cam.notes) == 1
    coco18 = det.read_openpose(_openpose(tmp_path / "c18", {"f1": [0.8]}, "coco18"))
    assert coco18.layout == "coco18"
    with pytest.raises(ValueError, match=r"17 joints could be h36m17 or coco17: give layout="):
        det.read_openpose(_openpose(tmp_path / "h17", {"f1": [0.8]}, "h36m17"))
    assert det.read_openpose(tmp_path / "h17", layout="h36m17").layout == "h36m17"


def test_heatmaps_over_a_box_land_where_the_box_says_in_the_view(tmp_path):
    prof = profiles.get_profile("smoke")
    rig = studio.get_rig("h36m_s9").at_resolution(prof.studio.image_px)  # real 1000² sensors, person-centred views
    window, size = det.sensor_window(rig, 1)
    side = prof.studio.heatmap_px
    target = np.array([[window[0] + 0.4 * window[2], window[1] + 0.7 * window[2]]])  # a sensor point in the view
    box = np.array([target[0, 0] - 60.5, target[0, 1] - 40.5, target[0, 0] + 99.5, target[0, 1] + 79.5])
    W, H = 32, 24  # a detector's own grid over the box (160 × 120 sensor px)
    at = (target[0] - box[:2]) * np.array([W, H]) / (box[2:] - box[:2]) - 0.5  # the target in the box's heatmap px
    gx, gy = (np.exp(-(np.arange(n) - c) ** 2 / (2 * 1.5 ** 2)) for n, c in ((W, at[0]), (H, at[1])))
    maps = np.repeat((gy[:, None] * gx[None, :])[None, None], 17, axis=1)  # (1, 17, H, W): every joint there
    path = det.write_heatmaps(tmp_path / "cam.npz", maps, box, "h36m17")
    cam = det.read_heatmaps(path, "cam")
    view = det.resample_heatmaps(torch.from_numpy(np.asarray(cam.heatmaps)), cam.box_px, window, side)
    peak = metrics.heatmap_argmax_px(view)[0, 0].double().numpy()
    expected = det.sensor_to_view_px(target, window, side)[0]
    assert np.abs(peak - expected).max() <= 0.5  # within the view's half pixel (a quarter-pixel read-out)


def test_book_heatmaps_round_trip_bit_for_bit(tmp_path):
    rig = studio.load_rig(CEILING5).at_resolution(32)
    hm = torch.rand(2, 5, 17, 8, 8, generator=torch.Generator().manual_seed(0))
    cams = det.read_detections(det.write_book_heatmaps(tmp_path / "hm.npz", hm, rig))
    assert [c.camera for c in cams] == [c.name for c in rig.cameras]
    rec = det.assemble(rig, [(c.camera, c) for c in cams])
    assert torch.equal(rec.view_heatmaps(0, 2, 8, 0.5), hm)


# ----------------------------------------------------------------------------------------------------------------------
# bad input: one line naming the file, the camera, the frame and the field


def test_nan_and_negative_scores_and_coordinates_are_one_line_errors(tmp_path):
    xy, s = np.full((17, 2), 10.0), np.full(17, 0.5)
    s_nan = s.copy()
    s_nan[4] = np.nan
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"images": [{"id": 0, "file_name": "f0.jpg"}], "annotations": [
        {"image_id": 0, "keypoints": np.concatenate([xy, s_nan[:, None]], 1).reshape(-1).tolist()}]})
                    .replace("NaN", "NaN"))
    with pytest.raises(ValueError, match=r"^detections file '.*n\.json': camera 'c2': frame 'f0\.jpg': field "
                                         r"'keypoints': score of keypoint 4 is nan"):
        det.read_coco(path, "c2")
    folder = _openpose(tmp_path / "op", {"f_01": [0.5]})
    data_ = json.loads((folder / "f_01_keypoints.json").read_text())
    data_["people"][0]["pose_keypoints_2d"][3] = None  # joint 1's x
    (folder / "f_01_keypoints.json").write_text(json.dumps(data_))
    with pytest.raises(ValueError, match=r"camera 'c3': frame 'f_01': field 'people\[0\]\.pose_keypoints_2d': "
                                         r"keypoint 1 has a non-finite coordinate"):
        det.read_openpose(folder, "c3")


def test_a_file_of_another_layout_names_the_layouts_read(tmp_path):
    folder = tmp_path / "op19"
    folder.mkdir()
    (folder / "x_0_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0, 2.0, 0.5] * 19}]}))
    with pytest.raises(ValueError, match=r"op19': camera 'c': field 'pose_keypoints_2d': 19 joints is none of the "
                                         r"known layouts: h36m17 \(17\), coco17 \(17\), body25 \(25\), coco18 \(18\)"):
        det.read_openpose(folder, "c")
    path = _coco_dataset(tmp_path / "odd.json", ["a"], {0: [(np.zeros((17, 2)), [0.5] * 17, 1.0)]},
                         names=[f"kp{i}" for i in range(17)])
    with pytest.raises(ValueError, match=r"odd\.json': field 'categories\[\]\.keypoints': the joint names"):
        det.read_coco(path)
    (tmp_path / "d.csv").write_text("frame,x,y\n")
    with pytest.raises(ValueError, match=r"d\.csv': unknown kind of detections '\.csv'"):
        det.read_detections(tmp_path / "d.csv")


def _keypoints(rig, X, score=0.9):
    """Exact keypoints of poses X (N, 17, 3) in every camera's sensor pixels, as CameraKeypoints."""
    x = geometry.project(rig.projections(dtype=torch.float64), X.double()).numpy()
    cams = []
    for v, cam in enumerate(rig.cameras):
        xy = det.view_to_sensor_px(x[:, v], det.sensor_window(rig, v)[0], rig.image_px)
        cams.append(det.CameraKeypoints(f"{cam.name}.json", [f"{cam.name}_{i:04d}" for i in range(len(X))], xy,
                                        np.full(xy.shape[:2], score), "h36m17", cam.name))
    return cams


def test_missing_unknown_and_repeated_cameras_and_mismatched_frame_counts():
    rig = studio.load_rig(CEILING5).at_resolution(64)
    cams = _keypoints(rig, motion.sample_poses("test", 3, 0)[0])
    with pytest.raises(ValueError, match=r"rig 'ceiling5': no detections for camera 'wall_sw'"):
        det.assemble(rig, [(c.camera, c) for c in cams if c.camera != "wall_sw"])
    with pytest.raises(ValueError, match=r"has 5 cameras .* detections were given for 4"):
        det.assemble(rig, [(None, dataclasses.replace(c, camera=None)) for c in cams[:4]])  # paths in the rig's order
    with pytest.raises(ValueError, match=r"camera 'wall_xx': no such camera in rig 'ceiling5'"):
        det.assemble(rig, [("wall_xx", cams[0])] + [(c.camera, c) for c in cams[1:]])
    with pytest.raises(ValueError, match=r"camera 'wall_ne': a second file for this camera"):
        det.assemble(rig, [(c.camera, c) for c in cams] + [("wall_ne", cams[0])])
    short = cams[2]
    short.frames, short.xy_px, short.score = short.frames[:2], short.xy_px[:2], short.score[:2]
    with pytest.raises(ValueError, match=r"detections file '.*\.json': camera '.*': 2 frames, but camera 'wall_ne' "
                                         r"\(wall_ne\.json\) has 3: .*--frames name"):
        det.assemble(rig, [(c.camera, c) for c in cams])
    rec = det.assemble(rig, [(c.camera, c) for c in cams], match="name")  # by the number in the names
    assert rec.num_frames == 3 and rec.rows[2].tolist() == [0, 1, -1]
    assert any("no frame for 1 of the 3 frames" in n for n in rec.notes)


def test_joints_outside_the_image_are_dropped_and_said_and_empty_frames_counted():
    rig = studio.load_rig(CEILING5).at_resolution(64)
    cams = _keypoints(rig, motion.sample_poses("test", 3, 0)[0])
    cams[1].xy_px[2, J["left_wrist"]] = [5000.0, 10.0]
    cams[3].score[0] = 0.0
    rec = det.assemble(rig, [(c.camera, c) for c in cams])
    assert rec.cameras[1].score[2, J["left_wrist"]] == 0.0
    assert any("camera 'wall_nw': 1 keypoints outside the 1024×1024 image were dropped (first: frame 'wall_nw_0002', "
               "joint 'left_wrist'" in n for n in rec.notes)
    assert any("camera 'wall_se': 1 of 3 frames without any detection" in n for n in rec.notes)


# ----------------------------------------------------------------------------------------------------------------------
# lifting


def test_exact_keypoints_lift_to_their_poses_and_a_frame_seen_once_is_nan_not_dropped():
    prof = profiles.get_profile("smoke")
    rig = studio.load_rig(CEILING5).at_resolution(prof.studio.image_px)
    X, _ = motion.sample_poses("test", 3, 1)
    cams = _keypoints(rig, X)
    for c in cams[1:]:
        c.score[1] = 0.0  # frame 1: only the first camera sees the person
    for c in cams[1:]:
        c.score[2, J["nose"]] = 0.0  # frame 2: the nose in the first camera only
    out = lift.lift(det.assemble(rig, [(c.camera, c) for c in cams]), prof, "none", progress=False)
    assert out.lifted.tolist() == [True, False, True] and np.isnan(out.points_m["rpsm"][1]).all()
    assert any("1 of 3 frames have detections in fewer than 2 cameras" in n for n in out.notes)
    err = np.linalg.norm(out.points_m["ransac"][[0, 2]] - X[[0, 2]].numpy(), axis=-1)
    side_mm = 1000 * 2.5 / prof.studio.heatmap_px  # about one 16² heatmap pixel at the cameras' distance
    assert np.nanmedian(err) * 1000 < side_mm  # the quarter-pixel read-out of 16² heatmaps, nothing more
    assert np.isnan(out.points_m["ransac"][2, J["nose"]]).all()  # one view: no triangulation
    assert np.isfinite(out.points_m["rpsm"][2, J["nose"]]).all()  # the RPSM places it by the limb lengths
    assert (out.confidence["rpsm"][[0, 2]] >= 0).all() and (out.confidence["rpsm"][[0, 2]] <= 1).all()
    assert out.inliers["ransac"][0].min() >= 2 and out.views.tolist() == [5, 1, 5]


# ----------------------------------------------------------------------------------------------------------------------
# the command, end to end: the round trip through every format gives the internal pipeline's poses


@pytest.fixture(scope="module")
def backbone_like():
    """A few of the rig's test frames with heatmaps like the backbone's (exact Gaussians of the projected joints plus
    seeded noise), and the internal pipeline's 3D of them (RANSAC and RPSM, :mod:`mfcore.pictorial`)."""
    prof = profiles.get_profile("smoke")
    s = prof.studio
    rig = studio.load_rig(CEILING5).at_resolution(s.image_px)
    X, _ = motion.sample_poses("test", 3, 5)
    x = geometry.project(rig.projections(), X)
    pred = data.gaussian_heatmaps(geometry.scale_pixels(x, s.image_px, s.heatmap_px), s.heatmap_px,
                                  s.heatmap_sigma_px)
    pred = pred + 0.3 * torch.rand(pred.shape, generator=torch.Generator().manual_seed(1))
    P_hm = pictorial.heatmap_projections(rig.projections(), s.image_px, s.heatmap_px)
    stats = lift.limb_stats(prof)
    internal = {e: pictorial.estimate_3d(e, pred, P_hm, stats, prof.pictorial) for e in lift.ESTIMATORS}
    peaks = metrics.heatmap_argmax_px(pred)  # what keypoint files carry: the maxima (heatmap px) and their values
    from_keypoints = det.keypoint_heatmaps(peaks, pred.flatten(-2).amax(-1).clamp(max=1.0), s.heatmap_px,
                                           s.heatmap_sigma_px)
    internal_kp = pictorial.estimate_3d("rpsm", from_keypoints, P_hm, stats, prof.pictorial)
    return dict(prof=prof, rig=rig, X=X, pred=pred, internal=internal, internal_kp=internal_kp)


@pytest.fixture
def numerics():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _mpjpe(points_m, X) -> float:
    return float(metrics.mpjpe_mm(torch.as_tensor(points_m), X.double()).mean())


@pytest.mark.parametrize("fmt", ["heatmaps", "book", "coco", "openpose"])
def test_round_trip_through_every_format_gives_the_internal_pipelines_3d(backbone_like, tmp_path, capsys, numerics,
                                                                         fmt):
    b = backbone_like
    args = det.export(b["pred"], b["rig"], tmp_path, formats=(fmt,))[fmt]
    layout = ["--layout", "h36m17"] if fmt in ("heatmaps", "openpose") else []  # 17 channels: the reader asks
    out = tmp_path / "poses.npz"
    assert lift_cli.main([str(CEILING5), *args, "-o", str(out), "--profile", "smoke", "--device", "cpu", *layout]) == 0
    z = np.load(out)
    for est in lift.ESTIMATORS:
        expected = b["internal_kp"] if (est == "rpsm" and fmt in ("coco", "openpose")) else b["internal"][est]
        assert abs(_mpjpe(z[f"{est}_3d_m"], b["X"]) - _mpjpe(expected, b["X"])) <= 0.5  # the acceptance: 0.5 mm
        assert np.abs(z[f"{est}_3d_m"] - expected.double().numpy()).max() < 1e-4  # in fact the same poses
    assert (z["rpsm_3d"] == z["rpsm_3d_m"]).all() and str(z["units"]) == "m"  # a book rig file: the book's frame
    table = (tmp_path / "poses.csv").read_text().splitlines()
    assert table[0] == "frame,joint,estimator,x,y,z,units,confidence,inliers,views" and len(table) == 1 + 3 * 17 * 2
    assert (tmp_path / "poses_preview.png").read_bytes()[:4] == b"\x89PNG"
    assert "3 of 3 frames lifted (NoFusion)" in capsys.readouterr().out


def test_the_command_fuses_by_the_epipolar_lines_and_writes_the_rigs_units(backbone_like, tmp_path, capsys,
                                                                            numerics):
    from mfcore import calibration

    b = backbone_like
    anipose = calibration.write_anipose(studio.load_rig(CEILING5), tmp_path / "calibration.toml")  # millimetres
    args = det.export(b["pred"], b["rig"], tmp_path, formats=("coco",))["coco"]
    out = tmp_path / "p.npz"
    assert lift_cli.main([str(anipose), *args, "-o", str(out), "--profile", "smoke", "--device", "cpu",
                          "--fusion", "epipolar"]) == 0
    z = np.load(out)
    assert str(z["fusion"]) == "EpipolarFusion" and str(z["units"]) == "mm"
    imported = calibration.read_rig(anipose, warn=False)
    np.testing.assert_allclose(z["rpsm_3d"], imported.to_file(z["rpsm_3d_m"]), atol=1e-6)
    assert np.nanmedian(np.linalg.norm(z["rpsm_3d"][:, J["pelvis"]] - z["rpsm_3d"][:, J["thorax"]], axis=-1)) > 100
    assert "EpipolarFusion" in capsys.readouterr().out


def test_the_command_says_bad_input_in_one_line(backbone_like, tmp_path, capsys, numerics):
    b = backbone_like
    args = det.export(b["pred"], b["rig"], tmp_path, formats=("coco",))["coco"]
    base = [str(CEILING5), "-o", str(tmp_path / "p.npz"), "--profile", "smoke", "--device", "cpu"]
    last = b["rig"].cameras[-1].name
    for bad_args, message in ((args[:4], f"no detections for camera {last!r}"),
                              (args + [f"extra={args[0].split('=')[1]}"], "camera 'extra': no such camera"),
                              ([a.replace(".json", ".jsn") for a in args], "does not exist"),
                              (args + ["--fusion", "nonsense.pt"], "adapted-parameter file 'nonsense.pt' does not "
                                                                   "exist"),
                              (args + ["--fusion", "epipolr"], "unknown --fusion 'epipolr'; valid: none, epipolar")):
        assert lift_cli.main(base[:1] + bad_args + base[1:]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "p.npz").exists()


def test_the_command_fuses_with_an_adapted_metafuse_file_of_the_same_rig_and_profile(backbone_like, tmp_path, capsys,
                                                                                  numerics):
    from mfcore import adapt, fusion

    b = backbone_like
    side = b["prof"].studio.heatmap_px
    args = det.export(b["pred"], b["rig"], tmp_path, formats=("coco",))["coco"]
    base = [str(CEILING5), *args, "--profile", "smoke", "--device", "cpu"]
    model = fusion.AffineFuse(5, side, start="line", sigma_px=b["prof"].studio.heatmap_sigma_px)
    good = adapt.save_adapted(model, tmp_path / "adapted.pt")
    assert lift_cli.main(base + ["-o", str(tmp_path / "m.npz"), "--fusion", str(good)]) == 0
    z = np.load(tmp_path / "m.npz")
    assert str(z["fusion"]) == "MetaFuse" and z["lifted"].all()
    fused = lift.fuse_block(model.freeze(), torch.from_numpy(np.ones((1, 5, 17, side, side), np.float32)),
                            torch.ones(1, 5, dtype=torch.bool))
    assert not np.allclose(z["fused_score"], z["detection_score"])  # the model fused the views (Eq. (1)'s mix)
    assert torch.isfinite(fused).all()
    other = adapt.save_adapted(fusion.AffineFuse(5, 2 * side), tmp_path / "other.pt")
    assert lift_cli.main(base + ["-o", str(tmp_path / "o.npz"), "--fusion", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"fuses 5 views of {2 * side}² heatmaps" in err and f"profile 'smoke' {side}² heatmaps" in err
