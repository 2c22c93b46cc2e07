"""The renderer: depth-test visibility (a joint behind the torso is hidden from the front and seen from the back),
occluders hide joints in some views only, left and right limbs alike, tiled culling equals dense ray casting, and the
same seed renders the same images."""

import torch

from mfcore import geometry, render, skeleton
from mfcore.studio import Rig

J = skeleton.JOINT_INDEX


def standing_pose() -> torch.Tensor:
    """A hand-made standing person at the origin facing +y (right side towards +x), (1, 17, 3) metres."""
    pts = {
        "pelvis": (0.0, 0.0, 0.95), "right_hip": (0.1, 0.0, 0.93), "right_knee": (0.1, 0.0, 0.5),
        "right_ankle": (0.1, 0.0, 0.08), "left_hip": (-0.1, 0.0, 0.93), "left_knee": (-0.1, 0.0, 0.5),
        "left_ankle": (-0.1, 0.0, 0.08), "spine": (0.0, 0.0, 1.2), "thorax": (0.0, 0.0, 1.45),
        "nose": (0.0, 0.1, 1.62), "head_top": (0.0, 0.0, 1.75), "left_shoulder": (-0.18, 0.0, 1.42),
        "left_elbow": (-0.2, 0.0, 1.15), "left_wrist": (-0.22, 0.0, 0.9), "right_shoulder": (0.18, 0.0, 1.42),
        "right_elbow": (0.2, 0.0, 1.15), "right_wrist": (0.22, 0.0, 0.9),
    }
    return torch.tensor([pts[n] for n in skeleton.JOINT_NAMES])[None]


def front_back_rig(image_px=64) -> Rig:
    front = geometry.look_at_camera((0.0, 4.0, 1.1), (0.0, 0.0, 1.1), 100.0, image_px, "front")
    back = geometry.look_at_camera((0.0, -4.0, 1.1), (0.0, 0.0, 1.1), 100.0, image_px, "back")
    return Rig("front_back", [front, back])


def quiet_scene(X, seed=0):
    """The scene of seed with no occluders."""
    scene = render.sample_scene(X, seed)
    scene.box_on[:] = False
    scene.cap_on[:, render.NUM_BODY:] = False
    return scene


def test_wrist_behind_the_torso_is_occluded_from_the_front_and_visible_from_the_back():
    X = standing_pose()
    X[0, J["right_elbow"]] = torch.tensor([0.15, -0.2, 1.2])
    X[0, J["right_wrist"]] = torch.tensor([0.0, -0.3, 1.1])  # behind the back
    rig = front_back_rig()
    vis = render.joint_visibility(quiet_scene(X), X, rig.centers_m().float())  # (1, 2, J)
    wrist = J["right_wrist"]
    assert not vis[0, 0, wrist] and vis[0, 1, wrist]
    # the left wrist hangs beside the body: visible from both sides; the nose only from the front
    assert vis[0, :, J["left_wrist"]].all()
    assert vis[0, 0, J["nose"]] and not vis[0, 1, J["nose"]]


def test_an_occluder_hides_a_joint_in_one_view_only():
    X = standing_pose()
    rig = front_back_rig()
    scene = quiet_scene(X)
    knee = J["left_knee"]
    assert render.joint_visibility(scene, X, rig.centers_m().float())[0, :, knee].all()
    scene.box_on[0, 0] = True  # a crate between the front camera and the knees
    scene.box_c[0, 0] = torch.tensor([0.0, 1.0, 0.4])
    scene.box_e[0, 0] = torch.tensor([0.4, 0.2, 0.4])
    scene.box_yaw[0, 0] = 0.3
    vis = render.joint_visibility(scene, X, rig.centers_m().float())
    assert not vis[0, 0, knee] and vis[0, 1, knee]
    assert vis[0, 0, J["head_top"]]  # the crate is low: the head stays visible


def test_left_and_right_limbs_have_the_same_geometry_and_nearly_the_same_colour():
    scene = render.sample_scene(standing_pose().repeat(3, 1, 1), seed=4)
    names = list(render.BODY_NAMES)
    pairs = [(names.index(n), names.index(n.replace("left", "right"))) for n in names if n.startswith("left_")
             and n != "left_flank"]
    assert len(pairs) == 6
    for l, r in pairs:
        assert torch.equal(scene.cap_r[:, l], scene.cap_r[:, r])
        ratio = scene.cap_rgb[:, l] / scene.cap_rgb[:, r]
        assert torch.allclose(ratio, torch.full_like(ratio, render.LEFT_SHADE))
    # mirrored pose, mirrored primitives: left limb lengths equal the right ones
    a, b, _ = render.body_primitives(standing_pose())
    length = (b - a).norm(dim=-1)[0]
    for l, r in pairs:
        assert torch.isclose(length[l], length[r])


def _pixel_setup(rig, image_px):
    K = torch.stack([c.K for c in rig.cameras]).float()
    R = torch.stack([c.R for c in rig.cameras]).float()
    t = torch.stack([c.t for c in rig.cameras]).float()
    return K, R, t


def test_tiled_culling_finds_the_same_nearest_surface_as_dense_ray_casting():
    from mfcore import studio

    rig = studio.dome_rig().subset([0, 7, 22]).at_resolution(32)
    X = standing_pose().repeat(4, 1, 1) + torch.tensor([[[0.5, -0.3, 0.0]], [[0.0, 0.0, 0.0]], [[-0.7, 0.2, 0.0]],
                                                        [[0.2, 0.8, 0.0]]])
    scene = render.sample_scene(X, 11)
    scene.box_on[:] = True
    scene.cap_on[:] = True
    K, R, t = _pixel_setup(rig, 32)
    origin, dirs = render.pixel_rays(K, R, t, 32)
    T = render.tile_size(32)
    tile_dirs = render._to_tiles(dirs, 32, T)
    t_hit, prim = render._trace_tiles(origin, tile_dirs, scene, K, R, t, 32, T, 1 << 16)
    t_cap, t_box = render.nearest_hits(origin, tile_dirs.reshape(dirs.shape)[None].expand(4, -1, -1, -1), scene)
    t_dense, i_dense = torch.cat([t_cap, t_box], -1).min(-1)
    i_dense = torch.where(torch.isfinite(t_dense), i_dense, -1)
    t_hit, prim = t_hit.reshape(t_dense.shape), prim.reshape(t_dense.shape)
    assert torch.isfinite(t_dense).float().mean() > 0.05  # the test sees something
    # culling never loses a surface; a ray grazing a capsule may round to a hit in one pass and a miss in the other
    # (the two passes order the same arithmetic differently): at most 1 pixel in 4,000
    both = torch.isfinite(t_dense) & torch.isfinite(t_hit)
    assert torch.equal(prim[both], i_dense[both]) and (prim != i_dense).sum() <= prim.numel() // 4000
    assert torch.allclose(t_hit[both], t_dense[both], atol=2e-3)  # float32 roots of grazing rays: about 1 mm


def test_same_seed_same_images_and_chunking_changes_nothing():
    rig = front_back_rig(32)
    X = standing_pose().repeat(3, 1, 1)
    K, R, t = _pixel_setup(rig, 32)
    img1 = render.render_images(render.sample_scene(X, 5), K, R, t, 32)
    img2 = render.render_images(render.sample_scene(X, 5), K, R, t, 32, chunk_frames=1)
    img3 = render.render_images(render.sample_scene(X, 6), K, R, t, 32)
    assert img1.shape == (3, 2, 3, 32, 32)
    assert torch.equal(img1, img2)
    assert not torch.equal(img1, img3)
    assert img1.min() >= 0 and img1.max() <= 1
    # the body shows: the pixel under the pelvis has the albedo of a body part, lit, not the room behind
    x = geometry.project(rig.projections(), X[:1])[0, 0, J["pelvis"]].round().long()
    assert not torch.equal(img1[0, 0, :, x[1], x[0]], img3[0, 0, :, x[1], x[0]])


def test_scene_draws_depend_on_the_frame_not_the_batch():
    X = standing_pose().repeat(5, 1, 1)
    s5, s2 = render.sample_scene(X, 9), render.sample_scene(X[:2], 9)
    assert torch.equal(s5.cap_rgb[:2], s2.cap_rgb) and torch.equal(s5.box_c[:2], s2.box_c)


def test_occluders_stand_away_from_the_person():
    from mfcore import motion

    X, _ = motion.sample_poses("train", 64, 0)
    scene = render.sample_scene(X, 0)
    pelvis = X[:, None, 0, :2]
    box_gap = (scene.box_c[..., :2] - pelvis).norm(dim=-1) - scene.box_e[..., :2].norm(dim=-1)
    assert (box_gap[scene.box_on] > 0.35).all()
    pillar_gap = (scene.cap_a[:, render.NUM_BODY:, :2] - pelvis).norm(dim=-1) - scene.cap_r[:, render.NUM_BODY:]
    assert (pillar_gap[scene.cap_on[:, render.NUM_BODY:]] > 0.35).all()
    assert scene.box_on.any() and scene.cap_on[:, render.NUM_BODY:].any()
