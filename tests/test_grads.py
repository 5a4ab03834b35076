"""per_loss_grads, grad_cosine, assert_connected."""

from __future__ import annotations

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
    c = mlh.grad_cosine(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert torch.isfinite(c).all() and c[0, 1] == 0 and c[0, 0] == 1


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
        with pytest.warns(UserWarning):
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
