"""Plain training of many fusion models as one program (mfcore.training): equal to training them one by one."""

import pytest
import torch

from mfcore import fusion, maml, training


def _pool(n=12, v=3, j=2, side=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, v, j, side, side, generator=g), torch.rand(n, v, j, side, side, generator=g)


def _model(cls, seed, views=3, side=4):
    model = cls(views, side)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("cls", [fusion.AffineFuse, fusion.NaiveFuse])
def test_members_trained_at_once_equal_each_trained_alone(cls):
    """Each member its own frames (its K shots), mini-batch generator, start and trainable names: the program of all
    members gives every member what train_fusion gives it alone; frozen names stay bit-identical."""
    pred, target = _pool()
    frames = [torch.tensor([0, 3, 5, 7]), torch.tensor([1, 2, 3, 4, 5, 6, 8]), torch.tensor([9, 10, 11, 0, 2])]
    seeds = [3, 4, 5]
    trainable = [("theta",), ("theta", "omega_base"), ("omega_base",)] if cls is fusion.AffineFuse else None
    alone = []
    for m, (f, s) in enumerate(zip(frames, seeds)):
        model = _model(cls, m)
        losses = maml.train_fusion(model, pred[f], target[f], steps=5, lr=1e-2, batch_size=4, seed=s,
                                   trainable=trainable[m] if trainable else None, progress=False)
        alone.append((losses, {n: p.detach().clone() for n, p in model.named_parameters()}))
    start = training.stack_members(_model(cls, m) for m in range(3))
    params, history = training.train_members(_model(cls, 0), start, pred, target, member_frames=frames, steps=5,
                                             lr=1e-2, batch_size=4, seeds=seeds, trainable=trainable, progress=False)
    assert history.shape == (5, 3)
    for m, (losses, state) in enumerate(alone):
        assert torch.allclose(history[:, m], torch.tensor(losses), rtol=1e-5, atol=1e-9)
        for n, p in state.items():
            assert torch.allclose(params[n][m], p, atol=1e-6), (m, n)
    if cls is fusion.AffineFuse:
        assert torch.equal(params["omega_base"][0], start["omega_base"][0])  # member 0 moves θ only
        assert torch.equal(params["theta"][2], start["theta"][2])  # member 2 moves ω_base only
        assert not torch.equal(params["theta"][0], start["theta"][0])
    one = training.member_model(_model(cls, 0), params, 1)
    assert all(torch.equal(p, params[n][1]) for n, p in one.named_parameters())


def test_a_custom_objective_is_each_members_own_loss():
    """The objective is a parameter: here Eq. (3) on the unmixed sum of the views, per member."""
    pred, target = _pool(n=6)

    def objective(fused, y, views):
        return (fused.sum(2) - y.sum(2)).square().flatten(1).mean(1)

    frames = [torch.arange(6), torch.arange(3, 6)]
    model = _model(fusion.AffineFuse, 0)
    expected = maml.train_fusion(model, pred[3:], target[3:], steps=3, lr=1e-2, batch_size=3, seed=2,
                                 trainable=("theta",), objective=objective, progress=False)
    start = training.stack_members([_model(fusion.AffineFuse, 1), _model(fusion.AffineFuse, 0)])
    _, history = training.train_members(model, start, pred, target, member_frames=frames, steps=3, lr=1e-2,
                                        batch_size=3, seeds=[7, 2], trainable=("theta",), objective=objective,
                                        progress=False)
    assert torch.allclose(history[:, 1], torch.tensor(expected), rtol=1e-5)


def test_minibatches_are_train_fusions_draws_and_bad_members_are_clear_errors():
    frames = training.minibatch_frames([torch.tensor([4, 5, 6, 7, 8]), torch.tensor([0, 1, 2])], 2, 3, [1, 2])
    g = torch.Generator().manual_seed(1)
    assert frames[0, 0].tolist() == (torch.tensor([4, 5, 6, 7, 8])[torch.randperm(5, generator=g)[:3]]).tolist()
    assert frames[:, 1].tolist() == [[0, 1, 2], [0, 1, 2]]  # no more frames than the batch: all, in order
    with pytest.raises(ValueError, match="one size"):
        training.minibatch_frames([torch.arange(5), torch.arange(2)], 1, 3, [0, 0])
    with pytest.raises(ValueError, match="one seed per member"):
        training.minibatch_frames([torch.arange(5)], 1, 3, [0, 1])
    pred, target = _pool(n=6)
    start = training.stack_members([_model(fusion.AffineFuse, 0)])
    with pytest.raises(ValueError, match="unknown parameters"):
        training.train_members(_model(fusion.AffineFuse, 0), start, pred, target, member_frames=[torch.arange(6)],
                               steps=1, lr=1e-2, batch_size=3, seeds=[0], trainable=("phi",), progress=False)
    with pytest.raises(ValueError, match="V=3"):
        training.train_members(_model(fusion.AffineFuse, 0), start, pred[:, :2], target[:, :2],
                               member_frames=[torch.arange(6)], steps=1, lr=1e-2, batch_size=3, seeds=[0],
                               progress=False)
    with pytest.raises(ValueError, match="share class"):
        training.stack_members([_model(fusion.AffineFuse, 0), _model(fusion.NaiveFuse, 0)])


def test_the_members_that_fit_are_bounded_by_the_limit_off_cuda():
    assert training.fit_members(10, "cpu") >= 1 << 20 and training.fit_members(10, "cpu", limit=3) == 3
    assert training.entry_bytes("affine") == training.ENTRY_BYTES["affine"]
    with pytest.raises(ValueError, match="unknown training kind"):
        training.entry_bytes("conv")
    with pytest.raises(ValueError, match="member_bytes"):
        training.fit_members(0, "cpu")
