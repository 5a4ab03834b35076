"""mlh.masked_mean: denominator, empty masks, NaN/inf in masked-out entries, dtypes, devices."""

from __future__ import annotations

import pytest
import torch
from helpers.devices import device_fixture, dtypes_for  # noqa: F401  (the fixture is `device`)
from torch.autograd import gradcheck, gradgradcheck

import multiloss_helpers as mlh

NAN, INF = float("nan"), float("inf")


def test_the_denominator_is_the_number_of_selected_entries():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0])
    mask = torch.tensor([True, True, True, False])
    assert mlh.masked_mean(values, mask).item() == 2.0
    # the usual (loss * mask).mean() divides by all four
    assert (values * mask).mean().item() == 1.5


@pytest.mark.parametrize("poison", [NAN, INF, -INF])
def test_masked_out_nan_and_inf_reach_neither_value_nor_gradient(poison):
    values = torch.tensor([[1.0, poison, 3.0], [poison, 5.0, poison]], requires_grad=True)
    mask = torch.isfinite(values.detach())
    value = mlh.masked_mean(values, mask)
    assert value.item() == 3.0
    (grad,) = torch.autograd.grad(value, values)
    assert torch.equal(grad, mask.double().float() / 3)
    # the usual form is poisoned
    assert not torch.isfinite((values * mask).sum() / mask.sum())


def test_per_dim_means_and_an_all_false_row():
    values = torch.tensor([[1.0, NAN, 3.0], [NAN, NAN, NAN], [2.0, 4.0, 6.0]], requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    out = mlh.masked_mean(values, mask, dim=1)
    assert torch.equal(out.detach(), torch.tensor([2.0, 0.0, 4.0]))
    (grad,) = torch.autograd.grad(out.sum(), values)
    expected = torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    torch.testing.assert_close(grad, expected)
    by_columns = mlh.masked_mean(values, mask, dim=(0,))
    torch.testing.assert_close(by_columns.detach(), torch.tensor([1.5, 4.0, 4.5]))
    both = mlh.masked_mean(values, mask, dim=(-1, 0))
    assert both.shape == () and both.item() == pytest.approx(16 / 5)


def test_an_all_false_mask_gives_a_connected_zero_with_zero_gradients():
    weight = torch.tensor([2.0, -1.0], requires_grad=True)
    losses = torch.stack([weight.sum(), weight.prod()])
    value = mlh.masked_mean(losses, torch.zeros(2, dtype=torch.bool))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()  # runs: the zero is on the graph
    assert torch.equal(weight.grad, torch.zeros(2))


def test_a_nan_label_needs_the_where_before_the_loss():
    # masked_mean's gradient on a masked-out entry is exactly 0, but a NaN made upstream,
    # inside the loss, meets that 0 in the chain rule: d/dpred (pred - NaN)^2 * 0 is NaN
    pred = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    label = torch.tensor([1.0, NAN, 2.5])
    labelled = ~torch.isnan(label)
    mlh.masked_mean((pred - label) ** 2, labelled).backward()
    assert torch.isnan(pred.grad[1])
    pred.grad = None
    safe_label = torch.where(labelled, label, 0.0)  # the documented fix: before the loss
    value = mlh.masked_mean((pred - safe_label) ** 2, labelled)
    value.backward()
    assert value.item() == pytest.approx((0.25 + 0.25) / 2)
    assert torch.equal(pred.grad, torch.tensor([-0.5, 0.0, -0.5]))


def test_a_per_sample_mask_broadcasts_over_the_other_dimensions():
    values = torch.arange(6.0).reshape(3, 2)
    mask = torch.tensor([[True], [False], [True]])
    assert mlh.masked_mean(values, mask).item() == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert torch.equal(mlh.masked_mean(values, mask, dim=0), torch.tensor([2.0, 3.0]))


def test_gradcheck_and_gradgradcheck():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(4, 3, generator=gen) < 0.5
    mask[1] = False
    for dim in (None, 0, 1, (0, 1)):

        def fn(v, dim=dim):
            return mlh.masked_mean(v * v, mask, dim=dim)

        assert gradcheck(fn, (values,))
        assert gradgradcheck(fn, (values,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_summed_in_float32(dtype):
    # 4096 copies of 1 plus 0.25: float16's own running sum would lose the small parts
    values = torch.full((4097,), 1.0, dtype=dtype)
    values[0] = 0.25
    mask = torch.ones(4097, dtype=torch.bool)
    out = mlh.masked_mean(values, mask)
    assert out.dtype == dtype
    expected = torch.tensor((4096 + 0.25) / 4097).to(dtype)
    assert out.item() == expected.item()


def test_on_each_device_and_dtype(device):
    for dtype in dtypes_for(device):
        values = torch.tensor([[1.0, NAN], [3.0, 4.0]], dtype=dtype, device=device)
        values.requires_grad_(True)
        mask = torch.tensor([[True, False], [True, True]], device=device)
        out = mlh.masked_mean(values, mask, dim=1)
        assert out.dtype == dtype and out.device.type == device.type
        out.sum().backward()
        assert torch.equal(out.detach().float().cpu(), torch.tensor([1.0, 3.5]))
        assert torch.equal(values.grad.float().cpu(), torch.tensor([[1.0, 0.0], [0.5, 0.5]]))


@pytest.mark.parametrize(
    ("values", "mask", "kwargs", "error", "match"),
    [
        ([1.0], torch.tensor([True]), {}, TypeError, "`values` must be a torch.Tensor"),
        (
            torch.tensor([1, 2]),
            torch.tensor([True, True]),
            {},
            TypeError,
            "`values` must be a real",
        ),
        (torch.ones(2), [True, False], {}, TypeError, "`mask` must be a bool tensor"),
        (torch.ones(2), torch.tensor([1, 0]), {}, TypeError, r"bool tensor, got torch.int64"),
        (torch.ones(2), torch.tensor([1.0, 0.0]), {}, TypeError, "bool tensor"),
        (torch.ones(2, 3), torch.ones(2, dtype=torch.bool), {}, ValueError, "does not broadcast"),
        (torch.ones(2), torch.ones(2, 2, dtype=torch.bool), {}, ValueError, "does not broadcast"),
        (
            torch.ones(2),
            torch.ones(2, dtype=torch.bool),
            {"dim": 1},
            ValueError,
            r"`dim` must be in",
        ),
        (
            torch.ones(2),
            torch.ones(2, dtype=torch.bool),
            {"dim": 0.0},
            TypeError,
            "`dim` must be an int",
        ),
        (torch.ones(2, 2), torch.ones(2, dtype=torch.bool), {"dim": (0, -2)}, ValueError, "twice"),
        (torch.ones(2), torch.ones(2, dtype=torch.bool), {"dim": ()}, ValueError, "at least one"),
    ],
)
def test_bad_input_is_refused_by_name(values, mask, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.masked_mean(values, mask, **kwargs)
