"""per_loss_grads, grad_cosine, assert_connected."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import multiloss_helpers as mlh


def _model_and_losses(t=3):
    model = mlh.MultiHeadNet(4, {f"h{i}": 1 for i in range(t)}, hidden=(8, 8), seed=0)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    out = model(x)
    losses = [F.mse_loss(out[f"h{i}"], y * (i + 1)) for i in range(t)]
    return model, losses


def test_rows_equal_autograd_grad_and_sum_to_the_gradient_of_the_sum():
    model, losses = _model_and_losses()
    params = list(model.parameters())
    grads = mlh.per_loss_grads(losses, params, retain_graph=True)
    assert grads.shape == (3, sum(p.numel() for p in params))
    for i, loss in enumerate(losses):
        ref = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        ref = torch.cat(
            [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(ref, params)]
        )
        torch.testing.assert_close(grads[i], ref)
    total = torch.autograd.grad(sum(losses), params)
    torch.testing.assert_close(grads.sum(0), torch.cat([g.flatten() for g in total]))


def test_unreached_parameters_give_zeros():
    model, losses = _model_and_losses(2)
    head1 = model.head_parameters("h1")
    grads = mlh.per_loss_grads(losses, head1)
    assert torch.count_nonzero(grads[0]) == 0
    assert torch.count_nonzero(grads[1]) > 0


def test_stacked_losses_module_and_named_parameters():
    model, losses = _model_and_losses(2)
    a = mlh.per_loss_grads(torch.stack(losses), model, retain_graph=True)
    b = mlh.per_loss_grads(losses, dict(model.named_parameters()))
    torch.testing.assert_close(a, b)


def test_graph_is_freed_unless_retained():
    model, losses = _model_and_losses(2)
    mlh.per_loss_grads(losses, model)
    with pytest.raises(RuntimeError, match="second time"):
        losses[0].backward()


def test_feature_level_gradients():
    model, _ = _model_and_losses()
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    features = model.features(x)
    losses = [F.mse_loss(model.heads[f"h{i}"](features), y) for i in range(3)]
    grads = mlh.per_loss_grads(losses, features)
    assert grads.shape == (3, features.numel())


def test_follows_dtype():
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    grads = mlh.per_loss_grads([(w**2).sum(), w.sum()], [w])
    assert grads.dtype == torch.float64
    torch.testing.assert_close(
        grads, torch.stack([2 * w.detach(), torch.ones(5, dtype=torch.float64)])
    )


@pytest.mark.parametrize(
    ("losses", "params", "error", "match"),
    [
        ([], None, TypeError, "non-empty list"),
        ([torch.ones(2, requires_grad=True)], None, ValueError, r"`losses\[0\]` must be a scalar"),
        ([torch.tensor(1.0)], None, ValueError, r"`losses\[0\]` does not require grad"),
        (torch.ones(2, 2, requires_grad=True), None, ValueError, "must be 1-D"),
        (None, [], ValueError, "`params` is empty"),
        (None, [torch.ones(2)], ValueError, r"`params\[0\]` does not require grad"),
        (None, "weights", TypeError, "`params` must be a tensor, a module"),
        (None, [3.0], TypeError, r"`params\[0\]` must be a tensor"),
    ],
)
def test_per_loss_grads_bad_inputs(losses, params, error, match):
    w = torch.ones(2, requires_grad=True)
    if losses is None:
        losses = [(w * 2).sum()]
    if params is None:
        params = [w]
    with pytest.raises(error, match=match):
        mlh.per_loss_grads(losses, params)


def test_grad_cosine_properties():
    g = torch.randn(4, 50, dtype=torch.float64)
    c = mlh.grad_cosine(g)
    torch.testing.assert_close(c, c.T)
    torch.testing.assert_close(c.diagonal(), torch.ones(4, dtype=torch.float64))
    ref = F.cosine_similarity(g[:, None, :], g[None, :, :], dim=-1)
    torch.testing.assert_close(c, ref)
    # scaling a task's gradient does not change its cosines
    torch.testing.assert_close(
        mlh.grad_cosine(g * torch.tensor([[3.0], [1.0], [0.1], [7.0]], dtype=torch.float64)), c
    )


def test_grad_cosine_zero_gradient_is_zero_not_nan():
    c = mlh.grad_cosine(torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    assert torch.isfinite(c).all() and c[0, 1] == 0 and c[0, 2] == 0
    torch.testing.assert_close(c.diagonal(), torch.ones(3))  # the documented diagonal


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1.0, 1e20, 1e30])
def test_grad_cosine_does_not_depend_on_scale(scale):
    base = torch.tensor([[1.0, 2.0, -1.0], [2.0, 4.0, -2.0], [-1.0, 0.5, 3.0]])
    want = mlh.grad_cosine(base.double())
    got = mlh.grad_cosine(base * scale)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
    assert got[0, 1] == pytest.approx(1.0)  # parallel gradients, however small or large


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_grad_cosine_dtypes(dtype):
    g = torch.tensor([[3.0, 4.0], [4.0, -3.0], [-3.0, -4.0]], dtype=dtype)
    c = mlh.grad_cosine(g)
    assert c.dtype == dtype
    torch.testing.assert_close(c[0], torch.tensor([1.0, 0.0, -1.0], dtype=dtype))


def test_per_loss_grads_keeps_each_parameters_precision():
    w64 = torch.tensor([1.0 + 1e-12, 2.0], dtype=torch.float64, requires_grad=True)
    w32 = torch.ones(2, requires_grad=True)
    loss = (w64**2).sum() + w32.sum().double()
    grads = mlh.per_loss_grads([loss], [w32, w64])
    assert grads.dtype == torch.float64  # promoted, not the first parameter's float32
    torch.testing.assert_close(grads[0, 2:], 2 * w64.detach(), rtol=0, atol=0)


def test_per_loss_grads_device_mismatch_is_named():
    w = torch.ones(2, requires_grad=True)
    v = torch.ones(2, device="meta", requires_grad=True)
    with pytest.raises(ValueError, match=r"must all be on one device, got cpu .* and meta"):
        mlh.per_loss_grads([(w * 2).sum()], [w, v])


class TestFlatAndAssignGrad:
    def test_flat_grad_concatenates_with_zeros_for_none(self):
        net = nn.Linear(2, 1)
        net(torch.ones(3, 2)).sum().backward()
        net.bias.grad = None
        torch.testing.assert_close(mlh.flat_grad(net), torch.tensor([3.0, 3.0, 0.0]))
        torch.testing.assert_close(mlh.flat_grad(net.parameters()), mlh.flat_grad(net))

    def test_flat_grad_promotes_mixed_dtypes_and_is_a_copy(self):
        a = torch.zeros(2, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        a.grad, b.grad = torch.ones(2), torch.full((1,), 1 + 1e-12, dtype=torch.float64)
        flat = mlh.flat_grad([a, b])
        assert flat.dtype == torch.float64 and flat[2] == 1 + 1e-12
        flat.zero_()
        assert a.grad.sum() == 2

    def test_flat_grad_refuses_a_single_tensor(self):
        with pytest.raises(TypeError, match="`params` must be an iterable of tensors"):
            mlh.flat_grad(torch.ones(3, requires_grad=True))

    def test_flat_grad_densifies_a_sparse_gradient(self):
        # a sparse nn.Embedding gradient raised "reshape is not implemented for sparse tensors"
        emb = nn.Embedding(4, 2, sparse=True)
        emb(torch.tensor([1, 1, 3])).sum().backward()
        want = torch.tensor([0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0])
        assert torch.equal(mlh.flat_grad(emb), want)

    def test_assign_grad_round_trip_and_accumulate(self):
        net = nn.Linear(3, 2)
        flat = torch.randn(8)
        mlh.assign_grad(net, flat)
        torch.testing.assert_close(mlh.flat_grad(net), flat)
        mlh.assign_grad(net, flat, accumulate=True)
        torch.testing.assert_close(mlh.flat_grad(net), 2 * flat)

    def test_assign_grad_leaves_no_graph(self):
        w = torch.zeros(3, requires_grad=True)
        source = torch.ones(3, requires_grad=True)
        mlh.assign_grad([w], source * 2)
        assert w.grad.grad_fn is None and not w.grad.requires_grad
        torch.testing.assert_close(w.grad, torch.full((3,), 2.0))

    def test_assign_grad_follows_each_parameters_dtype(self):
        a = torch.zeros(2, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        mlh.assign_grad([a, b], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
        assert a.grad.dtype == torch.float32 and b.grad.dtype == torch.float64

    @pytest.mark.parametrize(
        ("flat", "error", "match"),
        [
            (torch.zeros(3), ValueError, "has 3 entries but the parameters have 8"),
            (torch.zeros(2, 4), ValueError, r"must be a 1-D tensor, got shape \(2, 4\)"),
            # bool, integer and complex vectors were cast silently
            (torch.ones(8, dtype=torch.bool), TypeError, "1-D floating-point tensor"),
            (torch.ones(8, dtype=torch.long), TypeError, "1-D floating-point tensor"),
            (torch.ones(8, dtype=torch.cfloat), TypeError, "1-D floating-point tensor"),
            ([0.0] * 8, TypeError, "1-D floating-point tensor"),
            (torch.zeros(8, device="meta"), ValueError, "is on meta but the parameters are on cpu"),
        ],
    )
    def test_assign_grad_bad_inputs(self, flat, error, match):
        with pytest.raises(error, match=match):
            mlh.assign_grad(nn.Linear(3, 2), flat)
        with pytest.raises(TypeError, match="`accumulate` must be a bool"):
            mlh.assign_grad(nn.Linear(3, 2), torch.zeros(8), accumulate=1)


class TestAssertConnectedNonLeaf:
    def test_non_leaf_tensor_that_is_reached_passes(self):
        net = nn.Linear(3, 2)
        features = torch.tanh(net(torch.randn(4, 3)))
        mlh.assert_connected(features.pow(2).sum(), [features])
        mlh.assert_connected(features.pow(2).sum(), {"features": features, "weight": net.weight})

    def test_non_leaf_tensor_that_is_not_reached_is_named(self):
        net = nn.Linear(3, 2)
        features = net(torch.randn(4, 3))
        other = features * 2
        with pytest.raises(ValueError, match=r"does not reach 1 of 2 parameters: \['other'\]"):
            mlh.assert_connected(features.sum(), {"features": features, "other": other})


@pytest.mark.parametrize(
    ("grads", "error", "match"),
    [
        ([[1.0]], TypeError, "`grads` must be a \\(T, P\\) tensor"),
        (torch.ones(3), ValueError, "must have shape \\(T, P\\)"),
        (torch.ones(2, 2, dtype=torch.long), TypeError, "floating-point"),
    ],
)
def test_grad_cosine_bad_inputs(grads, error, match):
    with pytest.raises(error, match=match):
        mlh.grad_cosine(grads)


class TestAssertConnected:
    def test_connected_loss_passes(self):
        model, losses = _model_and_losses(2)
        mlh.assert_connected(sum(losses), model)

    def test_graph_cut_by_torch_tensor_is_named(self):
        model, _ = _model_and_losses(1)
        with warnings.catch_warnings():  # recent torch warns about it, older versions do not
            warnings.simplefilter("ignore", UserWarning)
            cut = torch.sum(torch.tensor([torch.sum(w) for w in model.parameters()]))
        assert not cut.requires_grad
        with pytest.raises(ValueError, match=r"has no graph.*torch.stack"):
            mlh.assert_connected(cut, model)

    def test_stack_keeps_the_graph(self):
        model, _ = _model_and_losses(1)
        kept = torch.stack([torch.sum(w) for w in model.parameters()]).sum()
        mlh.assert_connected(kept, model)

    def test_unreached_parameters_are_named(self):
        model, losses = _model_and_losses(2)
        with pytest.raises(
            ValueError, match=r"does not reach 2 of .*'heads.h1.weight', 'heads.h1.bias'"
        ):
            mlh.assert_connected(losses[0], model)

    def test_detached_branch(self):
        net = nn.Linear(3, 1)
        loss = net(torch.randn(2, 3)).detach().sum() + 0 * torch.ones((), requires_grad=True)
        with pytest.raises(ValueError, match="does not reach 2 of 2"):
            mlh.assert_connected(loss, net)

    def test_frozen_parameter(self):
        net = nn.Linear(3, 1)
        net.bias.requires_grad_(False)
        with pytest.raises(ValueError, match=r"\['bias'\] have requires_grad=False"):
            mlh.assert_connected(net(torch.randn(2, 3)).sum(), net)

    def test_plain_parameter_list(self):
        w = torch.ones(2, requires_grad=True)
        v = torch.ones(2, requires_grad=True)
        with pytest.raises(ValueError, match=r"\['params\[1\]'\]"):
            mlh.assert_connected((w * 2).sum(), [w, v])

    @pytest.mark.parametrize(
        ("loss", "params", "error", "match"),
        [
            (1.0, [], TypeError, "`loss` must be a tensor"),
            (torch.ones(2, requires_grad=True), None, ValueError, "`loss` must be a scalar"),
            (None, 3, TypeError, "`params` must be a module"),
            (None, [], ValueError, "`params` is empty"),
        ],
    )
    def test_bad_inputs(self, loss, params, error, match):
        w = torch.ones(2, requires_grad=True)
        loss = (w * 2).sum() if loss is None else loss
        params = [w] if params is None else params
        with pytest.raises(error, match=match):
            mlh.assert_connected(loss, params)
