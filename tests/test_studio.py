"""Camera rigs: every sensor frames the whole capture volume and every view the person volume, a view is exactly its
sensor cropped and scaled, rigs are deterministic, rig files round-trip, and every
bad rig file is a clear error naming the camera and the value."""

import json
import math

import pytest
import torch

from mfcore import geometry, studio


def all_rigs():
    return [studio.dome_rig(), studio.totalcapture_rig()] + [studio.h36m_rig(s) for s in studio.H36M_SUBJECTS]


def test_every_sensor_sees_the_whole_capture_volume_and_every_view_the_person_volume():
    sizes = {"dome": studio.DOME_SENSOR_SIZE, "totalcapture": studio.TOTALCAPTURE_SENSOR_SIZE}
    for rig in all_rigs():
        assert len(rig.sensors) == rig.num_views and rig.image_px == studio.REFERENCE_IMAGE_PX
        for cam, sensor in zip(rig.cameras, rig.sensors):
            assert sensor.image_size == sizes.get(rig.name, studio.H36M_SENSOR_SIZE)
            fraction, z_min = studio.volume_in_view(cam, sensor.image_size, sensor.K)
            assert fraction == 1.0 and z_min > 0.5, (rig.name, cam.name, fraction, z_min)
            x = studio._project_px(cam.at_resolution(64), studio.person_outline_m())
            assert (x >= -0.5).all() and (x <= 63.5).all(), (rig.name, cam.name)  # the person volume fills the view
            x0, y0, side = sensor.window_px
            w, h = sensor.image_size
            assert 0 <= x0 and 0 <= y0 and x0 + side <= w and y0 + side <= h and side < min(w, h)


def test_a_view_is_its_sensor_cropped_then_scaled_exactly():
    X = torch.tensor([[0.3, -0.2, 1.1], [-0.9, 0.7, 0.1], [0.0, 0.0, 2.0]], dtype=torch.float64)
    for rig in (studio.h36m_rig(9), studio.dome_rig().subset([3, 21]), studio.totalcapture_rig()):
        for view_px in (256, 64):
            for cam, sensor in zip(rig.at_resolution(view_px).cameras, rig.sensors):
                x_sensor = studio._project_px(geometry.Camera(sensor.K, cam.R, cam.t, 1), X)
                x_view = geometry.project(cam.projection()[None], X)[0]
                assert torch.allclose(sensor.view_px_of(x_sensor, view_px), x_view, rtol=0, atol=1e-9)
                scale = sensor.window_px[2] / view_px
                assert rig.at_resolution(view_px).sensor_px_per_view_px(torch.float64)[0] > 0
            assert torch.equal(rig.at_resolution(view_px).sensor_px_per_view_px(torch.float64),
                               torch.tensor([s.window_px[2] / view_px for s in rig.sensors], dtype=torch.float64))


def test_person_view_of_a_known_sensor():
    # a camera 5 m away on the y axis at pelvis height, f = 1000 px, 1000² sensor: the volume's window is centred
    K, unit = studio.framed_sensor((0.0, -5.0, 1.0), (0.0, 0.0, 1.0), (1000, 1000), fill=0.9)
    cam, sensor = studio.person_view(K, unit.R, unit.t, (1000, 1000), "c", view_px=100)
    x0, y0, side = sensor.window_px
    assert cam.image_px == 100 and abs(x0 + (side - 1) / 2 - 499.5) <= 0.5
    assert sensor.px_per_view_px(100) == side / 100
    with pytest.raises(ValueError, match="person volume spans"):
        studio.person_view(K, unit.R, unit.t, (1000, 1000), "c", outline_m=studio.volume_outline_m(radius_m=3.0))


def test_a_square_rig_without_sensors_is_its_own_sensor():
    cams = [geometry.look_at_camera((4.0 * math.cos(a), 4.0 * math.sin(a), 1.5), (0.0, 0.0, 1.0), 300.0, 512)
            for a in (0.0, 2.0)]
    rig = studio.Rig("square", cams)
    assert rig.at_resolution(512) is rig and torch.equal(rig.sensor_px_per_view_px(), torch.ones(2))
    small = rig.at_resolution(64)
    assert small.sensors == () and torch.equal(small.sensor_px_per_view_px(), torch.full((2,), 8.0))
    assert torch.equal(small.subset([1]).sensor_px_per_view_px(), torch.full((1,), 8.0))
    for a, b in zip(small.cameras, cams):  # the cameras exactly as before: K rescaled, R and t untouched
        assert torch.equal(a.K, b.at_resolution(64).K) and torch.equal(a.R, b.R) and torch.equal(a.t, b.t)


def test_dome_has_26_cameras_20_for_training_380_ordered_pairs_6_held_out():
    dome = studio.dome_rig()
    assert dome.num_views == 26
    pairs = [(i, j) for i in studio.DOME_TRAIN_VIEWS for j in studio.DOME_TRAIN_VIEWS if i != j]
    assert len(pairs) == 380
    assert set(studio.DOME_TRAIN_VIEWS).isdisjoint(studio.DOME_HELDOUT_VIEWS)
    assert len(studio.DOME_HELDOUT_VIEWS) == 6 and max(studio.DOME_HELDOUT_VIEWS) == 25
    centres = dome.centers_m()
    heights = centres[:, 2]
    distances = centres[:, :2].norm(dim=-1)
    assert heights.max() - heights.min() > 2.0  # varied heights
    assert distances.max() - distances.min() > 1.0  # varied distances
    # held-out cameras are spread around the dome, not bunched on one side
    held = centres[list(studio.DOME_HELDOUT_VIEWS), :2]
    assert (held / held.norm(dim=-1, keepdim=True)).mean(0).norm() < 0.5


def test_rigs_are_deterministic():
    for make in (studio.dome_rig, studio.totalcapture_rig, lambda: studio.h36m_rig(9)):
        r1, r2 = make(), make()
        for c1, c2 in zip(r1.cameras, r2.cameras):
            assert torch.equal(c1.K, c2.K) and torch.equal(c1.R, c2.R) and torch.equal(c1.t, c2.t)


def test_h36m_placement_is_jittered_per_subject_but_stays_a_four_corner_room():
    s1, s9 = studio.h36m_rig(1), studio.h36m_rig(9)
    assert s1.num_views == s9.num_views == 4
    shift = (s1.centers_m() - s9.centers_m()).norm(dim=-1)
    assert (shift > 0.01).all() and (shift < 0.6).all()
    azimuths = torch.atan2(s1.centers_m()[:, 1], s1.centers_m()[:, 0])
    quadrants = {int(((a % (2 * math.pi)) // (math.pi / 2)).item()) for a in azimuths}
    assert quadrants == {0, 1, 2, 3}
    assert set(studio.H36M_TRAIN_SUBJECTS) == {1, 5, 6, 7, 8} and set(studio.H36M_TEST_SUBJECTS) == {9, 11}
    with pytest.raises(ValueError, match="subject 2"):
        studio.h36m_rig(2)


def test_get_rig_names_and_errors():
    assert studio.get_rig("dome").num_views == 26
    assert studio.get_rig("totalcapture").num_views == 8
    assert studio.get_rig("h36m").name == "h36m_s1"
    assert studio.get_rig("h36m_s11").name == "h36m_s11"
    with pytest.raises(ValueError, match="valid rigs"):
        studio.get_rig("panoptic")
    with pytest.raises(ValueError, match="subject 3"):
        studio.get_rig("h36m_s3")


def test_subset_and_resolution_keep_the_same_windows():
    dome = studio.dome_rig()
    sub = dome.subset(studio.DOME_HELDOUT_VIEWS)
    assert sub.num_views == 6 and sub.cameras[0] is dome.cameras[20]
    with pytest.raises(ValueError, match="view indices"):
        dome.subset([26])
    X = torch.tensor([[0.3, -0.2, 1.1], [-0.8, 0.5, 0.1]], dtype=torch.float64)
    x256 = geometry.project(sub.projections(torch.float64), X)
    x64 = geometry.project(sub.at_resolution(64).projections(torch.float64), X)
    assert torch.allclose(geometry.scale_pixels(x256, 256, 64), x64, atol=1e-9)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_rig_file_round_trip(tmp_path, suffix):
    rig = studio.h36m_rig(5)
    path = studio.save_rig(rig, tmp_path / f"rig{suffix}")
    back = studio.load_rig(path)
    assert back.name == rig.name and back.num_views == rig.num_views
    assert [s.window_px for s in back.sensors] == [s.window_px for s in rig.sensors]  # the person-centred windows
    for c1, c2 in zip(rig.cameras, back.at_resolution(studio.REFERENCE_IMAGE_PX).cameras):
        assert c1.name == c2.name and c1.image_px == c2.image_px
        assert torch.equal(c1.K, c2.K) and torch.equal(c1.R, c2.R) and torch.equal(c1.t, c2.t)
    assert studio.get_rig(str(path)).num_views == 4


def test_example_rig_file_loads():
    from pathlib import Path

    rig = studio.load_rig(Path(studio.__file__).parent / "rigs" / "example_rig.yaml")
    assert rig.num_views >= 2


def _write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _good_dict():
    return studio._rig_to_dict(studio.totalcapture_rig().subset([0, 1, 2]))


def test_rig_with_one_camera_is_an_error(tmp_path):
    d = _good_dict()
    d["cameras"] = d["cameras"][:1]
    with pytest.raises(ValueError, match="at least 2 cameras, got 1"):
        studio.load_rig(_write(tmp_path, d))


def test_rig_with_a_non_rotation_is_an_error_naming_the_camera(tmp_path):
    d = _good_dict()
    d["cameras"][1]["R"] = (torch.tensor(d["cameras"][1]["R"]) * 1.1).tolist()
    with pytest.raises(ValueError, match=r"camera 'tc2': R is not a rotation"):
        studio.load_rig(_write(tmp_path, d))
    d = _good_dict()
    d["cameras"][2]["R"] = (-torch.tensor(d["cameras"][2]["R"])).tolist()  # a reflection: det = −1
    with pytest.raises(ValueError, match=r"camera 'tc3': R is not a rotation .*det R = -1"):
        studio.load_rig(_write(tmp_path, d))


def test_rig_with_nan_is_an_error_naming_the_camera_and_value(tmp_path):
    d = _good_dict()
    d["cameras"][0]["t"][1] = float("nan")
    with pytest.raises(ValueError, match=r"camera 'tc1': t must be finite, got \[.*nan"):
        studio.load_rig(_write(tmp_path, d))
    path = tmp_path / "bad.yaml"
    text = path.write_text("cameras:\n  - {name: a, image_px: 64, K: [[50, 0, 31.5], [0, 50, 31.5], [0, 0, 1]],\n"
                           "     R: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], t: [0, 0, .nan]}\n")
    with pytest.raises(ValueError, match="camera 'a': t must be finite"):
        studio.load_rig(path)


def test_rig_with_a_camera_that_misses_the_volume_is_an_error(tmp_path):
    d = _good_dict()
    away = geometry.look_at_camera((4.0, 0.0, 1.5), (9.0, 0.0, 1.5), 200.0, 256, name="tc2")  # looks out of the room
    d["cameras"][1].update(K=away.K.tolist(), R=away.R.tolist(), t=away.t.tolist())
    with pytest.raises(ValueError, match=r"camera 'tc2' does not see the whole capture volume.*0\.0% of its outline"):
        studio.load_rig(_write(tmp_path, d))


def test_other_bad_rig_files(tmp_path):
    d = _good_dict()
    d["cameras"][0]["image_size"] = [256, 0]
    with pytest.raises(ValueError, match="camera 'tc1': image size must be positive integers"):
        studio.load_rig(_write(tmp_path, d))
    d = _good_dict()
    d["cameras"][0]["K"][0][0] = "205.3"  # a number written as text
    with pytest.raises(ValueError, match="camera 'tc1': K must be real numbers, not text"):
        studio.load_rig(_write(tmp_path, d))
    d = _good_dict()
    del d["cameras"][0]["K"]
    with pytest.raises(ValueError, match="camera 'tc1': missing intrinsics"):
        studio.load_rig(_write(tmp_path, d))
    with pytest.raises(ValueError, match="unknown suffix '.txt'"):
        studio.load_rig(tmp_path / "rig.txt")
    with pytest.raises(ValueError, match="does not exist"):
        studio.load_rig(tmp_path / "missing.yaml")
