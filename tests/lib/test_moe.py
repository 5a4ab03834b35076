"""The mixture-of-experts auxiliary losses: load_balancing_loss against transformers and a
float64 reference, router_z_loss, special values, gradients, dtypes, devices, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.devices import device_fixture, dtypes_for, no_host_sync  # noqa: F401  (`device`)

import multiloss_helpers as mlh

SEEDS = range(5)


def _logits(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)


def _lse(row: list[float]) -> float:
    """log sum exp of a list of floats, in Python, shifted by the largest."""
    top = max(row)
    return top + math.log(sum(math.exp(v - top) for v in row))


def _reference_balance(layers, top_k, mask=None):
    """E * sum_e f_e P_e in float64, token by token, with Python loops."""
    rows = torch.cat([layer.reshape(-1, layer.shape[-1]) for layer in layers]).double()
    experts = rows.shape[-1]
    weights = [1.0] * len(rows) if mask is None else mask.double().flatten().tolist() * len(layers)
    counts, probs, total = [0.0] * experts, [0.0] * experts, sum(weights)
    for row, w in zip(rows, weights, strict=True):
        p = torch.softmax(row, -1)
        for e in sorted(range(experts), key=lambda e: -float(row[e]))[:top_k]:
            counts[e] += w
        for e in range(experts):
            probs[e] += w * float(p[e])
    return experts * sum(c / total * q / total for c, q in zip(counts, probs, strict=True))


# ------------------------------------------------------------------ against transformers
@pytest.fixture(scope="module")
def hf_balance():
    """transformers' function, imported with the libraries' offline switches set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        pytest.importorskip("transformers")
        from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
    return load_balancing_loss_func


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("top_k", [1, 2])
@pytest.mark.parametrize("experts", [4, 8])
@pytest.mark.parametrize("seed", SEEDS)
def test_load_balancing_loss_matches_transformers(hf_balance, seed, experts, top_k, layers):
    logits = tuple(_logits(12 + 5 * i, experts, seed=10 * seed + i).float() for i in range(layers))
    ours = mlh.load_balancing_loss(logits, top_k=top_k)
    theirs = hf_balance(logits, num_experts=experts, top_k=top_k)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-6, atol=1e-6)
    # and the float64 value of the same formula, token by token
    assert math.isclose(float(ours), _reference_balance(logits, top_k), rel_tol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_load_balancing_loss_with_a_mask_matches_transformers(hf_balance, seed):
    batch, seq, experts = 3, 5, 8
    logits = tuple(_logits(batch * seq, experts, seed=seed + i).float() for i in range(2))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, 3:] = 0  # padding
    mask[2, 1:] = 0
    ours = mlh.load_balancing_loss(logits, top_k=2, attention_mask=mask)
    theirs = hf_balance(logits, num_experts=experts, top_k=2, attention_mask=mask)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-6, atol=1e-6)
    assert math.isclose(float(ours), _reference_balance(logits, 2, mask), rel_tol=1e-6)
    # the padded tokens do not count: the same as leaving them out of every layer
    kept = mask.flatten().bool()
    without = mlh.load_balancing_loss(tuple(layer[kept] for layer in logits), top_k=2)
    torch.testing.assert_close(ours, without)


# ------------------------------------------------------------------ special values
@pytest.mark.parametrize("experts", [2, 4, 8])
@pytest.mark.parametrize("top_k", [1, 2])
def test_uniform_router_probabilities_give_top_k(experts, top_k):
    # equal logits in every row (any level): P_e = 1/E, so L = sum_e f_e = k
    logits = torch.arange(6.0)[:, None].expand(6, experts)
    torch.testing.assert_close(
        mlh.load_balancing_loss(logits, top_k=top_k), torch.tensor(float(top_k))
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_balanced_routing_gives_top_k_whatever_the_probabilities(seed):
    # token t's top-1 expert is t % E: f_e = 1/E exactly, so L = sum_e P_e = 1
    experts = 4
    logits = _logits(8, experts, seed=seed)
    logits[torch.arange(8), torch.arange(8) % experts] += 10.0
    torch.testing.assert_close(
        mlh.load_balancing_loss(logits, top_k=1), torch.tensor(1.0, dtype=torch.float64)
    )


@pytest.mark.parametrize("experts", [2, 4, 8])
def test_every_token_on_one_expert_gives_the_number_of_experts(experts):
    logits = torch.zeros(10, experts, dtype=torch.float64)
    logits[:, 1] = 60.0  # certain: P_1 = 1 up to e^-60
    value = mlh.load_balancing_loss(logits, top_k=1)
    torch.testing.assert_close(value, torch.tensor(float(experts), dtype=torch.float64))
    # and it is the largest value over random routings
    for seed in SEEDS:
        assert mlh.load_balancing_loss(_logits(10, experts, seed=seed), top_k=1) < value


def test_num_experts_is_a_check_of_the_last_dimension():
    logits = _logits(6, 4)
    torch.testing.assert_close(
        mlh.load_balancing_loss(logits, num_experts=4), mlh.load_balancing_loss(logits)
    )


def test_layers_are_concatenated_over_tokens_and_leading_dimensions_flattened():
    a, b = _logits(2, 3, 4, seed=1), _logits(5, 4, seed=2)
    both = torch.cat([a.reshape(-1, 4), b])
    torch.testing.assert_close(mlh.load_balancing_loss([a, b]), mlh.load_balancing_loss(both))
    torch.testing.assert_close(mlh.router_z_loss((a, b)), mlh.router_z_loss(both))


@pytest.mark.parametrize("seed", SEEDS)
def test_router_z_loss_is_the_mean_squared_logsumexp(seed):
    logits = _logits(7, 5, seed=seed, scale=3.0)
    want = sum(_lse(row) ** 2 for row in logits.tolist()) / 7
    assert math.isclose(float(mlh.router_z_loss(logits)), want, rel_tol=1e-12)


def test_router_z_loss_values_and_shift():
    zeros = torch.zeros(3, 4)
    torch.testing.assert_close(mlh.router_z_loss(zeros), torch.tensor(math.log(4) ** 2))
    # a shift of every logit leaves the softmax (and load balancing) alone but not L_z
    shifted = zeros + 10.0
    torch.testing.assert_close(mlh.router_z_loss(shifted), torch.tensor((10 + math.log(4)) ** 2))
    logits = _logits(6, 4)
    torch.testing.assert_close(
        mlh.load_balancing_loss(logits + 10.0), mlh.load_balancing_loss(logits)
    )


# ------------------------------------------------------------------ gradients
def test_gradient_flows_through_the_mean_probability_only():
    # dL/dP_e = E f_e: the gradient is that of E * sum_e f_e P_e with f held constant
    logits = _logits(9, 4, seed=3).requires_grad_(True)
    mlh.load_balancing_loss(logits, top_k=2).backward()
    x = logits.detach().clone().requires_grad_(True)
    routed = torch.zeros(9, 4, dtype=torch.float64).scatter_(1, x.detach().topk(2).indices, 1.0)
    (4 * (routed.mean(0) * torch.softmax(x, -1).mean(0)).sum()).backward()
    torch.testing.assert_close(logits.grad, x.grad)


def test_router_z_loss_gradient_is_two_lse_softmax_over_tokens():
    logits = _logits(6, 5, seed=4).requires_grad_(True)
    mlh.router_z_loss(logits).backward()
    x = logits.detach()
    want = 2 * torch.logsumexp(x, -1, keepdim=True) * torch.softmax(x, -1) / 6
    torch.testing.assert_close(logits.grad, want)


@pytest.mark.parametrize("seed", range(3))
def test_gradcheck_and_gradgradcheck(seed):
    a = _logits(5, 4, seed=seed).requires_grad_(True)
    b = _logits(3, 4, seed=seed + 10).requires_grad_(True)
    mask = torch.tensor([1.0, 0.0, 1.0])

    def balance(x, y):
        return mlh.load_balancing_loss((x, y), top_k=2)

    def masked(x):
        return mlh.load_balancing_loss((x[:3], x[2:]), top_k=1, attention_mask=mask)

    for fn, inputs in ((balance, (a, b)), (masked, (a,)), (mlh.router_z_loss, (a,))):
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)


def test_a_masked_expert_gives_finite_values_and_gradients():
    logits = _logits(6, 4, seed=5)
    logits[:, 2] = -math.inf  # expert 2 is never available
    logits[0, 0] = -math.inf
    x = logits.clone().requires_grad_(True)
    for fn in (lambda t: mlh.load_balancing_loss(t, top_k=2), mlh.router_z_loss):
        x.grad = None
        value = fn(x)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
        assert (x.grad[:, 2] == 0).all() and x.grad[0, 0] == 0
    # load balancing without the masked expert's column: the same sum, times 4 instead of 3
    kept = logits[:, [0, 1, 3]]
    torch.testing.assert_close(
        mlh.load_balancing_loss(logits, top_k=2),
        mlh.load_balancing_loss(kept, top_k=2) * 4 / 3,
    )


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_extreme_logits_stay_finite(scale):
    x = torch.tensor([[scale, 0.0, -scale], [0.0, scale, 1.0], [-scale, -scale, scale]])
    x.requires_grad_(True)
    for fn in (lambda t: mlh.load_balancing_loss(t, top_k=1), mlh.router_z_loss):
        x.grad = None
        value = fn(x)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), (scale, value, x.grad)
    want = sum(_lse(row) ** 2 for row in x.tolist()) / 3
    assert math.isclose(float(mlh.router_z_loss(x.detach())), want, rel_tol=1e-6)


# ------------------------------------------------------------------ dtypes and devices
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_out_is_the_input_dtype_and_float32_inside(dtype):
    logits = _logits(16, 8, seed=6).to(dtype)
    exact = logits.double()  # the same rounded values
    for fn in (lambda t: mlh.load_balancing_loss(t, top_k=2), mlh.router_z_loss):
        value = fn(logits)
        assert value.dtype == dtype
        want = fn(exact)
        # rounding the float32 result once: half an ulp of the output dtype
        tol = torch.finfo(dtype).eps * float(want.abs()) + 1e-6
        assert abs(float(value) - float(want)) <= tol, (dtype, float(value), float(want))


def test_devices_and_no_host_sync(device):
    for dtype in dtypes_for(device):
        logits = tuple(
            _logits(12, 4, seed=s).to(device, dtype).requires_grad_(True) for s in (0, 1)
        )
        mask = torch.ones(12, device=device)
        with no_host_sync(device):
            balance = mlh.load_balancing_loss(logits, top_k=2)
            masked = mlh.load_balancing_loss(logits, top_k=2, attention_mask=mask)
            z = mlh.router_z_loss(logits)
            (balance + z).backward()
        assert balance.device == logits[0].device and balance.dtype == dtype
        cpu = tuple(t.detach().cpu().double() for t in logits)
        tol = {"rtol": 1e-2, "atol": 1e-2} if dtype in (torch.float16, torch.bfloat16) else {}
        torch.testing.assert_close(
            balance.cpu().double(), mlh.load_balancing_loss(cpu, top_k=2), **tol
        )
        torch.testing.assert_close(masked, balance)
        torch.testing.assert_close(z.cpu().double(), mlh.router_z_loss(cpu), **tol)
        assert all(torch.isfinite(t.grad).all() for t in logits)


# ------------------------------------------------------------------ bad inputs
GOOD = torch.zeros(4, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"top_k": 0}, ValueError, r"`top_k` must be >= 1, got 0"),
        ({"top_k": 4}, ValueError, r"`top_k` must be <= the number of experts .*3.*got 4"),
        ({"top_k": 2.0}, TypeError, r"`top_k` must be an int"),
        ({"top_k": True}, TypeError, r"`top_k` must be an int"),
        ({"num_experts": 4}, ValueError, r"`num_experts` must equal .*\(3\), got 4"),
        ({"num_experts": "3"}, TypeError, r"`num_experts` must be an int"),
        ({"attention_mask": [1, 1, 1, 1]}, TypeError, r"`attention_mask` must be a torch.Tensor"),
        ({"attention_mask": torch.ones(5)}, ValueError, r"`attention_mask` must have one entry"),
        ({"attention_mask": torch.zeros(4)}, ValueError, r"at least one token kept"),
        ({"attention_mask": -torch.ones(4)}, ValueError, r"`attention_mask` must be >= 0"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.load_balancing_loss(GOOD, **kwargs)


@pytest.mark.parametrize("fn", [mlh.load_balancing_loss, mlh.router_z_loss])
@pytest.mark.parametrize(
    ("logits", "error", "match"),
    [
        (GOOD.numpy(), TypeError, r"`router_logits` must be a tensor .* got ndarray"),
        ([[0.0, 1.0]], TypeError, r"`router_logits\[0\]` must be a torch.Tensor, got list"),
        ((), ValueError, r"`router_logits` must hold at least one layer's logits, got an empty"),
        (torch.zeros(4, 3, dtype=torch.long), TypeError, r"real floating-point tensor, .*int64"),
        (torch.zeros(4), ValueError, r"`router_logits` must have shape \(tokens, num_experts\)"),
        (torch.zeros(0, 3), ValueError, r"at least one token and one expert, got shape \(0, 3\)"),
        ((GOOD, torch.zeros(4, 5)), ValueError, r"same number of experts.*has 3.*has 5"),
        ((GOOD, GOOD.double()), TypeError, r"same dtype.*float32.*`router_logits\[1\]`"),
        ((GOOD, GOOD.to("meta")), ValueError, r"`router_logits\[1\]` is on meta"),
    ],
)
def test_bad_logits_are_refused_by_name(fn, logits, error, match):
    with pytest.raises(error, match=match):
        fn(logits)


# ------------------------------------------------------------------ TopKMoE
@torch.no_grad()
def _reference_moe(moe, x, normalize=True):
    """The layer token by token in float64: the top-k experts by logit, their gates, the sum."""
    w_r, b_r = moe.router.weight.double(), moe.router.bias.double()
    layers = [(w.double(), b.double()) for w, b in zip(moe.weights, moe.biases, strict=True)]
    outputs = []
    for token in x.double().reshape(-1, moe.d_in):
        logits = w_r @ token + b_r
        probs = torch.softmax(logits, 0)
        chosen = sorted(range(moe.num_experts), key=lambda e: -float(logits[e]))[: moe.top_k]
        norm = sum(float(probs[e]) for e in chosen) if normalize else 1.0
        out = torch.zeros(moe.d_out, dtype=torch.float64)
        for e in chosen:
            h = token
            for i, (w, b) in enumerate(layers):
                h = h @ w[e] + b[e]
                h = torch.relu(h) if i < len(layers) - 1 else h
            out += float(probs[e]) / norm * h
        outputs.append(out)
    return torch.stack(outputs).reshape(*x.shape[:-1], moe.d_out)


@pytest.mark.parametrize("hidden", [None, 5])
@pytest.mark.parametrize(("top_k", "normalize"), [(2, True), (3, True), (1, False), (2, False)])
def test_topk_moe_matches_a_token_by_token_reference(hidden, top_k, normalize):
    moe = mlh.TopKMoE(3, 2, 6, top_k=top_k, hidden=hidden, normalize=normalize, seed=1)
    x = _logits(4, 5, 3, seed=7).float()  # leading dimensions are kept
    out, logits = moe(x)
    assert out.shape == (4, 5, 2) and logits.shape == (4, 5, 6)
    torch.testing.assert_close(logits, moe.router(x))
    want = _reference_moe(moe, x, normalize)
    torch.testing.assert_close(out.double(), want, rtol=1e-5, atol=1e-5)


def test_topk_moe_with_every_expert_is_the_dense_softmax_mixture():
    moe = mlh.TopKMoE(2, 1, 4, top_k=4, seed=2).double()
    x = _logits(9, 2, seed=3)
    out, logits = moe(x)
    experts = torch.einsum("ni,eio->neo", x, moe.weights[0]) + moe.biases[0]
    torch.testing.assert_close(out, (logits.softmax(-1)[..., None] * experts).sum(1))


def test_an_expert_no_token_chooses_gets_exactly_zero_gradient():
    moe = mlh.TopKMoE(2, 1, 4, top_k=2, seed=0).double()
    with torch.no_grad():  # expert 3 is never in a token's top 2
        moe.router.weight[3] = 0.0
        moe.router.bias[3] = -50.0
    x = _logits(16, 2, seed=4)
    out, _ = moe(x)
    out.square().sum().backward()
    assert (moe.router.weight.grad[3] == 0).all() and moe.router.bias.grad[3] == 0
    assert (moe.weights[0].grad[3] == 0).all() and (moe.biases[0].grad[3] == 0).all()
    assert moe.router.weight.grad[:3].abs().sum() > 0
    # without renormalisation the full softmax reaches every router row
    moe.normalize, moe.top_k = False, 1
    moe.zero_grad()
    moe(x)[0].square().sum().backward()
    assert moe.router.bias.grad[3] != 0


def test_topk_moe_gradcheck_in_float64():
    moe = mlh.TopKMoE(2, 1, 4, top_k=2, hidden=3, seed=5).double()
    x = _logits(6, 2, seed=6).requires_grad_(True)
    params = tuple(moe.parameters())

    def fn(x, *p):
        names = [n for n, _ in moe.named_parameters()]
        out, logits = torch.func.functional_call(moe, dict(zip(names, p, strict=True)), (x,))
        return out, logits

    assert torch.autograd.gradcheck(fn, (x, *params))


def test_topk_moe_is_seeded_without_touching_the_global_generator():
    state = torch.random.get_rng_state()
    a, b = mlh.TopKMoE(2, 1, 4, seed=3), mlh.TopKMoE(2, 1, 4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(mlh.TopKMoE(2, 1, 4, seed=4).router.weight, a.router.weight)


def test_topk_moe_under_vmap_equals_one_copy_at_a_time():
    layers = [mlh.TopKMoE(2, 1, 4, top_k=2, seed=s) for s in range(3)]
    params, buffers = torch.func.stack_module_state(layers)
    x = _logits(3, 10, 2, seed=8).float()

    def run(p, b, x):
        return torch.func.functional_call(layers[0], (p, b), (x,))

    out, logits = torch.vmap(run)(params, buffers, x)
    for i, layer in enumerate(layers):
        want_out, want_logits = layer(x[i])
        torch.testing.assert_close(out[i], want_out)
        torch.testing.assert_close(logits[i], want_logits)
    balance = torch.vmap(lambda z: mlh.load_balancing_loss(z, top_k=2))(logits)
    for i in range(3):
        torch.testing.assert_close(balance[i], mlh.load_balancing_loss(logits[i], top_k=2))


def test_topk_moe_repr_and_devices(device):
    moe = mlh.TopKMoE(3, 2, 5, top_k=2, hidden=4, seed=0)
    assert "d_in=3, d_out=2, num_experts=5, top_k=2, hidden=4, normalize=True, seed=0" in repr(moe)
    moe = moe.to(device)
    out, logits = moe(torch.randn(7, 3, device=device))
    assert out.device.type == device.type and logits.device.type == device.type
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 1, 4), {}, ValueError, r"`d_in` must be >= 1, got 0"),
        ((2, 1, 4), {"top_k": 5}, ValueError, r"`top_k` must be <= `num_experts` \(4\), got 5"),
        ((2, 1, 4), {"top_k": 1}, ValueError, r"`top_k=1` with `normalize=True`"),
        ((2, 1, 4), {"hidden": 0}, ValueError, r"`hidden` must be >= 1, got 0"),
        ((2, 1, 4), {"normalize": "yes"}, TypeError, r"`normalize` must be a bool"),
        ((2, 1.0, 4), {}, TypeError, r"`d_out` must be an int"),
        ((2, 1, 4), {"seed": -1}, ValueError, r"`seed`"),
    ],
)
def test_topk_moe_bad_arguments_are_refused_by_name(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.TopKMoE(*args, **kwargs)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        ([[0.0, 1.0]], TypeError, r"`x` must be a torch.Tensor, got list"),
        (torch.zeros(3, 4), ValueError, r"`x` must have shape \(\*, 2\), got \(3, 4\)"),
        (torch.zeros(3, 2, dtype=torch.long), TypeError, r"real floating-point"),
        (torch.zeros(3, 2, dtype=torch.float64), TypeError, r"model's dtype torch.float32"),
    ],
)
def test_topk_moe_bad_inputs_are_refused_by_name(x, error, match):
    with pytest.raises(error, match=match):
        mlh.TopKMoE(2, 1, 4)(x)
