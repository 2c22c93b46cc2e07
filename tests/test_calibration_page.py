"""The own-cameras page's table: one rig written in every calibration format comes back with the same projections."""

from mfbook import calibration_page
from mfcore import calibration, studio


def test_every_format_of_the_chapter_8_rig_imports_back_to_the_same_projections():
    table = calibration_page.imports_table().strip().splitlines()
    rows = [line.strip("|").split("|") for line in table[2:]]
    assert [r[0].strip() for r in rows] == list(calibration.WRITERS)
    assert all(r[0].strip() == r[2].strip() for r in rows)  # the format detected is the format written
    rig = calibration.read_rig(calibration_page.RIG_FILE, warn=False).rig
    largest_side = max(max(s.image_size) for s in rig.sensors) if rig.sensors else rig.image_px
    assert all(float(r[-1]) <= 1e-6 * largest_side for r in rows)


def test_the_reprojection_difference_sees_a_moved_camera():
    rig = studio.load_rig(calibration_page.RIG_FILE)  # square cameras: the views are the sensors
    assert not rig.sensors
    points = calibration.surface_points_m()[0] @ rig.cameras[0].R.numpy().T + rig.cameras[0].t.numpy()
    assert calibration_page.reprojection_difference_px(rig, rig, points) == 0.0
    moved = studio.Rig(rig.name, [rig.cameras[0], rig.cameras[1].__class__(rig.cameras[1].K, rig.cameras[1].R,
                                                                           rig.cameras[1].t + 0.01, rig.cameras[1].image_px,
                                                                           rig.cameras[1].name), *rig.cameras[2:]])
    assert calibration_page.reprojection_difference_px(rig, moved, points) > 0.1
    same = studio.Rig(rig.name, list(rig.cameras))
    assert calibration_page.reprojection_difference_px(rig, same, points) == 0.0
