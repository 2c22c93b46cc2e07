"""Your calibration files as the book's rig: every format round-trips the book's own synthetic rigs (written at test
time, no dataset's numbers), conventions (COLMAP's half pixel, Panoptic's cm and y down, units), real sensors of
mixed sizes, distortion kept, and one clear line for a bad file."""

import json
import warnings

import numpy as np
import pytest
import torch

from mfcore import adapt, calibration as cal, geometry, profiles, studio

POINTS_M = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 1.1], [-0.8, 0.5, 2.0], [1.1, 0.3, 0.4]])  # in the capture volume
FORMATS = {  # format → (file or folder name, how the writer turns book metres into file-world units)
    "opencv": ("rig.yml", lambda X: X),
    "opencv-xml": ("rig.xml", lambda X: X),
    "colmap": ("colmap", lambda X: X),
    "anipose": ("calibration.toml", lambda X: 1000.0 * X),
    "panoptic": ("calibration_seq.json", lambda X: 100.0 * X @ cal.UP_ROTATIONS["-y"]),
    "h36m": ("cameras.json", lambda X: 1000.0 * X),
    "h36m-npz": ("cameras.npz", lambda X: 1000.0 * X),
    "easymocap": ("easymocap", lambda X: X),
}


def _pixels(K, R, t, X) -> np.ndarray:
    x = (X @ np.asarray(R).T + np.asarray(t)) @ np.asarray(K).T
    return x[:, :2] / x[:, 2:]


def _real(rig):
    return cal.real_cameras(rig)  # (name, K, (w, h), dist, R, t) per camera's real image


def _mixed_rig() -> studio.Rig:
    """Two real sensors of different non-square sizes (1920×1080, 1280×720) and a square one, with distortion."""
    base = studio.h36m_rig(9)
    cams = []
    for c, s, (w, h), dist in zip(base.cameras, base.sensors, ((1920, 1080), (1280, 720), (1000, 1000)),
                                  ([-0.2, 0.05, 1e-3, -5e-4, 0.01], [0.1, -0.02, 0.0, 0.0, 0.0], [])):
        f = float(s.K[0, 0]) * h / s.image_size[1]  # the built-in sensor's framing on another image size
        K = [[f, 0.0, (w - 1) / 2], [0.0, f * 1.001, (h - 1) / 2 + 3.0], [0.0, 0.0, 1.0]]
        cams.append({"name": c.name, "image_size": [w, h], "K": K, "R": c.R.tolist(), "t": c.t.tolist(),
                     **({"dist": dist} if dist else {})})
    return studio.rig_from_dict({"name": "mixed", "cameras": cams})


def _write(rig, key, tmp_path):
    name, to_file = FORMATS[key]
    return cal.WRITERS[key.split("-")[0]](rig, tmp_path / key / name), to_file


def _assert_round_trip(rig, imported, to_file):
    for (name, K, size, dist, R, t), (name2, K2, size2, dist2, R2, t2) in zip(_real(rig), _real(imported.rig)):
        assert name2 == name and size2 == size
        x0 = _pixels(K, R, t, POINTS_M)
        x1 = _pixels(K2, R2, t2, imported.to_book_m(to_file(POINTS_M)))
        assert np.abs(x1 - x0).max() <= 1e-6 * max(size)  # the same pixel through the original and imported camera
        np.testing.assert_allclose(dist2, dist, atol=1e-12)  # distortion terms survive


@pytest.mark.parametrize("key", list(FORMATS))
@pytest.mark.parametrize("rig_name", ["h36m", "totalcapture", "ceiling5"])
def test_every_format_round_trips_a_point_to_the_same_pixel(tmp_path, key, rig_name):
    rig = studio.get_rig(studio.Path(studio.__file__).parent / "rigs" / "ceiling5.yaml" if rig_name == "ceiling5"
                         else rig_name)
    path, to_file = _write(rig, key, tmp_path)
    assert cal.detect_format(path) == key.split("-")[0]
    imported = cal.read_rig(path)
    assert imported.rig.num_views == rig.num_views
    _assert_round_trip(rig, imported, to_file)


@pytest.mark.parametrize("key", list(FORMATS))
def test_mixed_non_square_sizes_and_distortion_survive_every_format(tmp_path, key):
    rig = _mixed_rig()
    path, to_file = _write(rig, key, tmp_path)
    with pytest.warns(UserWarning, match=r"distortion.*largest shift is \d+\.\d px in camera 'h36m_s9_cam1'"):
        imported = cal.read_rig(path)
    assert [s.image_size for s in imported.rig.sensors] == [(1920, 1080), (1280, 720), (1000, 1000)]
    _assert_round_trip(rig, imported, to_file)
    back = studio.load_rig(studio.save_rig(imported.rig, tmp_path / "book.yaml"))  # dist kept in the book's file
    assert back.sensors[0].dist == imported.rig.sensors[0].dist and back.sensors[1].image_size == (1280, 720)


def test_square_views_of_real_sensors_project_exactly_as_crop_then_scale():
    rig = _mixed_rig()
    view = rig.at_resolution(64)
    X = torch.as_tensor(POINTS_M)
    for cam, sensor in zip(view.cameras, rig.sensors):
        real = torch.as_tensor(_pixels(sensor.K, cam.R, cam.t, POINTS_M))
        virtual = geometry.project(cam.projection()[None], X)[0]
        assert cam.image_px == 64 and torch.allclose(sensor.view_px_of(real, 64), virtual, atol=1e-9)
        x0, y0, side = sensor.window_px
        w, h = sensor.image_size
        assert side >= min(w, h) and studio.sees_volume(cam)  # the window holds the whole capture volume
    assert rig.sensors[2].window_px == (0, 0, 1000)  # a square sensor is its own window


def test_square_rigs_keep_their_cameras_exactly():
    rig = studio.Rig("square", [studio.Camera(s.K, c.R, c.t, s.image_size[0], c.name)
                                for c, s in zip(studio.get_rig("h36m").cameras, studio.get_rig("h36m").sensors)])
    back = studio.rig_from_dict(studio._rig_to_dict(rig))
    assert back.sensors == () and studio._rig_to_dict(back) == studio._rig_to_dict(rig)
    for a, b in zip(rig.cameras, back.cameras):
        assert torch.equal(a.K, b.K) and torch.equal(a.R, b.R) and torch.equal(a.t, b.t) and a.image_px == b.image_px


def test_colmap_principal_point_is_half_a_pixel_off(tmp_path):
    rig = studio.get_rig("h36m")
    folder = cal.write_colmap(rig, tmp_path / "colmap")
    line = [ln for ln in (folder / "cameras.txt").read_text().splitlines() if not ln.startswith("#")][0].split()
    sensor = rig.sensors[0]  # the files hold the real sensors, not the person-centred views
    assert line[1] == "PINHOLE" and float(line[6]) == float(sensor.K[0, 2]) + 0.5
    assert float(cal.read_rig(folder).rig.cameras[0].K[0, 2]) == float(sensor.K[0, 2])


def test_panoptic_is_cm_and_y_down_and_selects_cameras_by_type_or_name(tmp_path):
    rig = studio.get_rig("totalcapture")
    path = cal.write_panoptic(rig, tmp_path / "calibration_x.json")
    data = json.loads(path.read_text())
    centre_cm = -np.asarray(data["cameras"][0]["R"]).T @ np.asarray(data["cameras"][0]["t"]).reshape(3)
    C = rig.centers_m()[0].numpy()
    np.testing.assert_allclose(centre_cm, 100 * np.array([C[0], -C[2], C[1]]), atol=1e-9)  # cm, y down = −height
    for cam in data["cameras"][:2]:
        cam["type"] = "vga"
    path.write_text(json.dumps(data))
    imported = cal.read_rig(path)
    assert (imported.units, imported.up) == ("cm", "-y") and imported.rig.num_views == 6  # hd by default
    assert cal.read_rig(path, cameras="vga,tc5").rig.num_views == 3
    with pytest.raises(ValueError, match=r"calibration_x\.json.*camera 'tc99'.*--cameras"):
        cal.read_rig(path, cameras="tc99")


def test_camera_centre_is_where_the_file_says(tmp_path):
    rig = studio.get_rig("h36m")
    path = cal.write_h36m(rig, tmp_path / "cams.json", translation="T")  # T = the centre in mm
    data = json.loads(path.read_text())
    imported = cal.read_rig(path)
    for cam, name in zip(imported.rig.cameras, data):
        np.testing.assert_allclose(cam.center_m().numpy(), imported.to_book_m(np.asarray(data[name]["T"])),
                                   atol=1e-9)


def test_units_inferred_from_the_working_distance_and_overridable(tmp_path):
    rig = studio.get_rig("h36m")
    for units in ("m", "cm", "mm"):
        imported = cal.read_rig(cal.write_opencv(rig, tmp_path / f"{units}.yml", units=units))
        assert imported.units == units and "inferred" in imported.rules["units"]
        np.testing.assert_allclose(imported.rig.centers_m().numpy(), imported.to_book_m(
            rig.centers_m().numpy() / cal.METRES_PER_UNIT[units]), atol=1e-9)
    given = cal.read_rig(tmp_path / "mm.yml", units="mm", up="+z")
    assert given.rules["units"] == "given" and given.scale_m == 0.001
    with pytest.raises(ValueError, match=r"mm\.yml': camera '.*': field 'T_.*': read in m, .* wrong units"):
        cal.read_rig(tmp_path / "mm.yml", units="m")  # a rig 1000 times too large


def test_up_axis_is_inferred_from_the_cameras(tmp_path):
    rig = studio.get_rig("totalcapture")
    path = cal.write_panoptic(rig, tmp_path / "calibration_x.json")
    data = json.loads(path.read_text())
    h36m_like = {c["name"]: {"R": c["R"], "t": np.ravel(c["t"]).tolist(), "K": c["K"], "image_size": c["resolution"]}
                 for c in data["cameras"]}
    (tmp_path / "y_down.json").write_text(json.dumps(h36m_like))
    # an H36M-style file fixes +z; forcing inference on the y-down world finds −y
    assert cal.infer_up(cal.read_h36m(tmp_path / "y_down.json"))[0] == "-y"
    imported = cal.read_rig(tmp_path / "y_down.json", units="cm", up="-y")
    _assert_round_trip(rig, imported, FORMATS["panoptic"][1])


# ----------------------------------------------------------------------------------------------------------------------
# bad files: one line naming the file, the camera and the field


def _h36m_file(tmp_path, edit):
    path = cal.write_h36m(studio.get_rig("h36m"), tmp_path / "cams.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_a_non_rotation_names_file_camera_field(tmp_path):
    path = _h36m_file(tmp_path, lambda d: d["h36m_s1_cam2"].update(R=(1.1 * np.asarray(d["h36m_s1_cam2"]["R"])).tolist()))
    with pytest.raises(ValueError, match=r"^calibration file '.*cams\.json': camera 'h36m_s1_cam2': field 'R': not a "
                                         r"rotation"):
        cal.read_rig(path)


def test_a_missing_key_names_file_camera_field(tmp_path):
    path = _h36m_file(tmp_path, lambda d: d["h36m_s1_cam3"].pop("image_size"))
    with pytest.raises(ValueError, match=r"cams\.json': camera 'h36m_s1_cam3': field 'image_size': missing"):
        cal.read_rig(path)
    toml = cal.write_anipose(studio.get_rig("h36m"), tmp_path / "calibration.toml")
    toml.write_text(toml.read_text().replace("translation", "translatio", 1))
    with pytest.raises(ValueError, match=r"calibration\.toml': camera 'h36m_s1_cam1': field 'translation': missing"):
        cal.read_rig(toml)


def test_a_camera_looking_away_names_file_camera_field(tmp_path):
    def turn(d):  # 180° about the camera's x axis: same centre, looking out of the room
        flip = np.diag([1.0, -1.0, -1.0])
        d["h36m_s1_cam4"]["R"] = (flip @ np.asarray(d["h36m_s1_cam4"]["R"])).tolist()
        d["h36m_s1_cam4"]["t"] = (flip @ np.asarray(d["h36m_s1_cam4"]["t"])).tolist()

    with pytest.raises(ValueError, match=r"cams\.json': camera 'h36m_s1_cam4': field 'R': the camera looks away"):
        cal.read_rig(_h36m_file(tmp_path, turn))


def test_mixed_units_name_file_camera_field(tmp_path):
    path = _h36m_file(tmp_path, lambda d: d["h36m_s1_cam2"].update(t=(np.asarray(d["h36m_s1_cam2"]["t"]) / 1000).tolist()))
    with pytest.raises(ValueError, match=r"cams\.json': camera 'h36m_s1_cam2': field 't': .*mixed units"):
        cal.read_rig(path)


def test_a_number_written_as_text_is_an_error(tmp_path):
    path = _h36m_file(tmp_path, lambda d: d["h36m_s1_cam1"]["K"][0].__setitem__(0, "1264.47"))
    with pytest.raises(ValueError, match=r"camera 'h36m_s1_cam1': field 'K': must be real numbers, not text"):
        cal.read_rig(path)
    book = tmp_path / "rig.yaml"
    book.write_text(studio.Path(studio.__file__).parent.joinpath("rigs", "example_rig.yaml").read_text()
                    .replace("fx: 492.149", 'fx: "492.149"'))
    with pytest.raises(ValueError, match=r"camera 'front_left': fx must be real numbers, not text"):
        cal.read_rig(book)


# ----------------------------------------------------------------------------------------------------------------------
# the command and mfcore.adapt


def test_command_writes_the_rig_and_the_png_and_prints_the_summary(tmp_path, capsys):
    folder = cal.write_colmap(_mixed_rig(), tmp_path / "colmap")
    out, png = tmp_path / "rig.yaml", tmp_path / "rig.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cal.main(["import", str(folder), "-o", str(out), "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "1920×1080" in text and "1280×720" in text and "baselines (m)" in text and "view overlap" in text
    assert "re-centring" in text and "units: m (inferred" in text
    assert studio.load_rig(out).sensors[0].image_size == (1920, 1080)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_command_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    path = _h36m_file(tmp_path, lambda d: d["h36m_s1_cam2"].update(R=np.eye(3).tolist() + [[0, 0, 0]]))
    assert cal.main(["import", str(path), "-o", str(tmp_path / "rig.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: calibration file") and "'h36m_s1_cam2'" in err
    assert not (tmp_path / "rig.yaml").exists()
    assert cal.main(["import", str(tmp_path / "absent.toml"), "-o", str(tmp_path / "rig.yaml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["opencv", "colmap", "anipose", "panoptic", "h36m", "easymocap"])
def test_adapt_takes_every_format_of_a_rig_unlike_the_built_in_ones(tmp_path, key):
    ceiling5 = studio.Path(studio.__file__).parent / "rigs" / "ceiling5.yaml"
    path, _ = _write(studio.load_rig(ceiling5), key, tmp_path)
    prof = profiles.get_profile("smoke")
    rig = adapt.load_target_rig(path, prof)
    assert rig.num_views == 5 and rig.image_px == prof.studio.image_px
    expected = adapt.load_target_rig(ceiling5, prof)
    for a, b in zip(rig.cameras, expected.cameras):  # the same cameras up to the re-centring shift (< 1 cm)
        assert torch.allclose(a.R, b.R, atol=1e-5) and (a.center_m() - b.center_m()).norm() < 0.01  # R: 6 decimals


# ----------------------------------------------------------------------------------------------------------------------
# defects a newcomer met: the documented spellings work, every failure is one line that names what is wrong


CEILING5 = studio.Path(studio.__file__).parent / "rigs" / "ceiling5.yaml"


def test_up_as_documented_with_a_space_before_the_negative_axis(tmp_path, capsys):
    path = cal.write_panoptic(studio.get_rig("totalcapture"), tmp_path / "calibration_x.json")
    assert cal.main(["import", str(path), "--up", "-y", "-o", str(tmp_path / "a.yaml")]) == 0
    assert "up: -y (given)" in capsys.readouterr().out
    assert cal.cli.normalise_argv(["--up", "y", "--up", "+z", "--up=x", "-o", "-"]) == ["--up=+y", "--up=+z",
                                                                                         "--up=+x", "-o", "-"]


def test_an_unwritable_output_is_one_line_not_a_traceback(tmp_path, capsys):
    path = cal.write_anipose(studio.get_rig("h36m"), tmp_path / "calibration.toml")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    assert cal.main(["import", str(path), "-o", str(blocker / "rig.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot write") and "not_a_folder" in err


def test_a_colmap_number_that_is_not_one_names_file_camera_field(tmp_path):
    folder = cal.write_colmap(studio.get_rig("h36m"), tmp_path / "colmap")
    lines = (folder / "cameras.txt").read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:5] + ["abc"] + lines[2].split()[6:])  # camera 2's fy
    (folder / "cameras.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"^calibration file '.*cameras\.txt': camera '2': field 'PARAMS': 'abc' is "
                                         r"not a number$"):
        cal.read_rig(folder)
    lines[2] = "2 PINHOLE"
    (folder / "cameras.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"camera '2': field 'CAMERA line': expected CAMERA_ID MODEL"):
        cal.read_rig(folder)


def test_one_camera_in_metres_among_millimetre_cameras_is_mixed_units(tmp_path):
    path = cal.write_anipose(studio.get_rig("h36m"), tmp_path / "calibration.toml")  # mm, units inferred
    text = path.read_text().split("[cam_2]")
    line = next(ln for ln in text[1].splitlines() if ln.startswith("translation"))
    metres = [float(v) / 1000 for v in line.split("[")[1].split("]")[0].split(",") if v.strip()]
    text[1] = text[1].replace(line, f"translation = [ {', '.join(map(repr, metres))},]")
    path.write_text("[cam_2]".join(text))
    with pytest.raises(ValueError, match=r"camera 'h36m_s1_cam3': field 'translation': .*mixed units\?"):
        cal.read_rig(path)


def test_a_missing_folder_or_file_says_it_does_not_exist(tmp_path, capsys):
    for missing in (tmp_path / "cal" / "colmap", tmp_path / "cams.json"):
        with pytest.raises(ValueError, match=r"^calibration file '.*' does not exist$"):
            cal.read_rig(missing)
    assert cal.main(["import", str(tmp_path / "cal" / "colmap"), "-o", str(tmp_path / "r.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _colmap_at_scale(tmp_path, metres_per_unit: float):
    """ceiling5 as a COLMAP model whose lengths are in units of ``metres_per_unit`` (what SfM gives: any scale)."""
    folder = cal.write_colmap(studio.load_rig(CEILING5), tmp_path / "colmap")
    lines = (folder / "images.txt").read_text().splitlines()
    for i, ln in enumerate(lines):
        f = ln.split()
        if f and not ln.startswith("#"):
            lines[i] = " ".join(f[:5] + [repr(float(v) / metres_per_unit) for v in f[5:8]] + f[8:])
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_a_colmap_model_at_an_arbitrary_scale_reads_with_a_scale_or_a_known_baseline(tmp_path, capsys):
    small = _colmap_at_scale(tmp_path / "small", 3.0)  # one unit = 3 m: read as metres, the cameras 3 times too near
    with pytest.raises(ValueError, match=r"does not see the whole capture volume.*arbitrary scale.*scale=.*baseline="):
        cal.read_rig(small)
    folder = _colmap_at_scale(tmp_path, 0.37)  # one unit = 0.37 m: read as metres it passes, 2.7 times too far
    with pytest.warns(UserWarning, match=r"COLMAP model.*arbitrary scale.*inferred.*--scale or --baseline"):
        cal.read_rig(folder)
    original = studio.load_rig(CEILING5)
    true_m = float((original.centers_m()[0] - original.centers_m()[1]).norm())
    for imported in (cal.read_rig(folder, scale=0.37), cal.read_rig(folder, baseline=("wall_ne", "wall_nw", true_m))):
        assert imported.units == cal.SCALED and imported.scale_m == pytest.approx(0.37, rel=1e-6)
        got = imported.rig.centers_m()
        assert torch.allclose(got[0] - got[1], original.centers_m()[0] - original.centers_m()[1], atol=1e-4)  # R: 6 decimals
        np.testing.assert_allclose(imported.to_file(imported.to_book_m([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0]])
    assert cal.main(["import", str(folder), "--baseline", "wall_ne", "wall_nw", str(true_m), "-o",
                     str(tmp_path / "rig.yaml")]) == 0
    assert "from the baseline wall_ne–wall_nw" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"camera 'nope': field '--baseline': no such camera"):
        cal.read_rig(folder, baseline=("wall_ne", "nope", 1.0))
    with pytest.raises(ValueError, match=r"give one of units, scale and baseline"):
        cal.read_rig(folder, units="m", scale=0.37)
