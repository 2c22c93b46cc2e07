"""Exact tests of mfcore.geometry: the two-view facts Cross View Fusion (Sec. 3 of MetaFuse) rests on."""

import math

import pytest
import torch

from mfcore import geometry as g

VOLUME_CENTRE = (0.0, 0.0, 1.0)  # a person-sized capture volume: ~2 m tall, centre 1 m above the floor


def ring_cameras(n=4, radius=4.0, height=1.6, image_px=256, focal_px=300.0):
    """n cameras on a circle around the volume, all looking at its centre (metres, Z up)."""
    cams = []
    for k in range(n):
        a = 2 * math.pi * k / n + 0.3
        pos = (radius * math.cos(a), radius * math.sin(a), height + 0.2 * k)
        cams.append(g.look_at_camera(pos, VOLUME_CENTRE, focal_px, image_px, name=f"c{k}"))
    return cams


def volume_points(n=50, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    return X * torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64) - torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)


def test_look_at_camera_sees_target_at_principal_point_with_z_up():
    cam = g.look_at_camera((4.0, 0.0, 1.0), VOLUME_CENTRE, 300.0, 65)
    P = cam.projection()[None]
    centre = g.project(P, torch.tensor([VOLUME_CENTRE], dtype=torch.float64))[0, 0]
    assert torch.allclose(centre, torch.tensor([32.0, 32.0], dtype=torch.float64), atol=1e-9)
    above = g.project(P, torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64))[0, 0]
    assert above[1] < 32.0  # world up is image up (y down)
    assert torch.allclose(cam.center_m(), torch.tensor([4.0, 0.0, 1.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(cam.R @ cam.R.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert g.depth(P, torch.tensor([VOLUME_CENTRE], dtype=torch.float64))[0, 0].item() == pytest.approx(4.0)


def test_projected_points_satisfy_the_epipolar_constraint():
    cams = ring_cameras()
    X = volume_points()
    P = g.stack_projections(cams, dtype=torch.float64)
    x = g.project(P, X)  # (V, N, 2)
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            F = g.fundamental_matrix(cams[i], cams[j])
            x1 = torch.cat([x[i], torch.ones(len(X), 1, dtype=torch.float64)], 1)
            x2 = torch.cat([x[j], torch.ones(len(X), 1, dtype=torch.float64)], 1)
            residual = torch.einsum("ni,ij,nj->n", x2, F, x1)
            assert residual.abs().max() < 1e-9


def test_epipolar_line_passes_through_the_projection():
    cams = ring_cameras()
    X = volume_points()
    P = g.stack_projections(cams, dtype=torch.float64)
    x = g.project(P, X)
    F = g.fundamental_matrix(cams[0], cams[2])
    line = g.epipolar_line(F, x[0])  # (N, 3)
    assert torch.allclose(line[:, :2].norm(dim=-1), torch.ones(len(X), dtype=torch.float64))
    distance_px = (line[:, 0] * x[2, :, 0] + line[:, 1] * x[2, :, 1] + line[:, 2]).abs()
    assert distance_px.max() < 1e-8
    # a point off the ray is off the line, by the distance the line equation reports
    shifted = x[2] + 3.0 * line[:, :2]
    assert torch.allclose((line[:, 0] * shifted[:, 0] + line[:, 1] * shifted[:, 1] + line[:, 2]).abs(),
                          torch.full((len(X),), 3.0, dtype=torch.float64), atol=1e-8)


def test_back_projection_ray_contains_the_point():
    cam = ring_cameras()[1]
    X = volume_points()
    x = g.project(cam.projection()[None], X)[0]
    origin, direction = g.back_projection_ray(cam, x)
    assert torch.allclose(origin, cam.center_m().expand(len(X), 3))
    assert torch.allclose(direction.norm(dim=-1), torch.ones(len(X), dtype=torch.float64))
    v = X - origin
    s = (v * direction).sum(-1)
    assert (s > 0).all()  # the point lies in front of the camera, along +direction
    assert (v - s[:, None] * direction).norm(dim=-1).max() < 1e-9


@pytest.mark.parametrize("views", [2, 3, 4, 8])
def test_noise_free_triangulation_is_exact(views):
    cams = ring_cameras(n=views)
    X = volume_points(20, seed=views)
    P = g.stack_projections(cams, dtype=torch.float64)
    x = g.project(P, X)  # (V, N, 2)
    assert torch.allclose(g.triangulate_dlt(P, x), X, atol=1e-7)


def test_triangulation_batched_and_float32_dtype():
    cams = ring_cameras()
    X = volume_points(12).reshape(3, 4, 3)  # (B, N, 3)
    P = g.stack_projections(cams)  # float32
    x = g.project(P.double(), X).float()  # (B, V, N, 2)
    out = g.triangulate_dlt(P, x)
    assert out.shape == (3, 4, 3) and out.dtype == torch.float32
    assert torch.allclose(out.double(), X, atol=1e-3)


def test_weighted_triangulation_ignores_a_zero_weight_outlier_view():
    cams = ring_cameras(n=4)
    X = volume_points(10)
    P = g.stack_projections(cams, dtype=torch.float64)
    x = g.project(P, X).clone()
    x[3] += 40.0  # view 3 is badly wrong
    weights = torch.ones(4, 10, dtype=torch.float64)
    assert not torch.allclose(g.triangulate_dlt(P, x, weights), X, atol=1e-3)
    weights[3] = 0.0
    assert torch.allclose(g.triangulate_dlt(P, x, weights), X, atol=1e-7)


def test_at_resolution_is_consistent_with_scale_pixels():
    cam = ring_cameras(image_px=256)[0]
    X = volume_points()
    x256 = g.project(cam.projection()[None], X)[0]
    for px in (64, 32, 17):
        small = cam.at_resolution(px)
        assert small.image_px == px
        x_small = g.project(small.projection()[None], X)[0]
        assert torch.allclose(x_small, g.scale_pixels(x256, 256, px), atol=1e-9)
    # pixel centres: the centre of the top-left pixel block of 256² maps to the centre of pixel 0 at 64²
    assert g.scale_pixels(torch.tensor(1.5), 256, 64).item() == pytest.approx(0.0)
    assert g.scale_pixels(torch.tensor(0.0), 64, 256).item() == pytest.approx(1.5)


def test_fundamental_matrix_scales_with_resolution_to_the_same_lines():
    cams = ring_cameras(image_px=256)
    X = volume_points(5)
    x = g.project(g.stack_projections(cams, dtype=torch.float64), X)
    F_small = g.fundamental_matrix(cams[0].at_resolution(64), cams[1].at_resolution(64))
    line = g.epipolar_line(F_small, g.scale_pixels(x[0], 256, 64))
    x2 = g.scale_pixels(x[1], 256, 64)
    assert (line[:, 0] * x2[:, 0] + line[:, 1] * x2[:, 1] + line[:, 2]).abs().max() < 1e-9


def test_look_at_invalid_input_errors():
    with pytest.raises(ValueError, match="coincide"):
        g.look_at_camera((1.0, 2.0, 3.0), (1.0, 2.0, 3.0), 100.0, 64)
    with pytest.raises(ValueError, match="parallel"):
        g.look_at_camera((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), 100.0, 64)
    with pytest.raises(ValueError, match="image_px"):
        g.look_at_camera((4.0, 0.0, 1.0), VOLUME_CENTRE, 100.0, 0)


def test_camera_bad_shapes_error():
    with pytest.raises(ValueError, match="3x3"):
        g.Camera(torch.eye(2), torch.eye(3), torch.zeros(3), 64)


def test_dlt_bad_shapes_error():
    cams = ring_cameras()
    P = g.stack_projections(cams, dtype=torch.float64)
    x = g.project(P, volume_points(5))  # (4, 5, 2)
    with pytest.raises(ValueError, match="P must be"):
        g.triangulate_dlt(P[:, :, :3], x)
    with pytest.raises(ValueError, match=">= 2 views"):
        g.triangulate_dlt(P[:1], x[:1])
    with pytest.raises(ValueError, match="V = 4"):
        g.triangulate_dlt(P, x[:3])
    with pytest.raises(ValueError, match="x_px"):
        g.triangulate_dlt(P, torch.cat([x, x[..., :1]], -1))
    with pytest.raises(ValueError, match="weights must be"):
        g.triangulate_dlt(P, x, torch.ones(4, 4))
    with pytest.raises(ValueError, match="non-negative"):
        g.triangulate_dlt(P, x, -torch.ones(4, 5))
