r"""Auxiliary losses of a mixture-of-experts router: load balancing and the router z-loss.

A mixture-of-experts layer sends each token to the ``top_k`` experts with the largest
router logits. Trained on its task loss alone, the router tends to collapse onto a few
experts; :func:`load_balancing_loss` (Switch Transformer, Mixtral) pushes the load
back towards uniform, and :func:`router_z_loss` (ST-MoE) keeps the router logits small,
so that the router's softmax stays in a range where rounding does not hurt. Both are
one more loss component: ``loss = task + alpha * load_balancing_loss(...) + beta *
router_z_loss(...)``. :class:`TopKMoE` is a small layer of that kind, which returns its
router logits next to its output.

Both take the router logits of one layer, a tensor ``(tokens, E)`` (or ``(..., E)``,
flattened over the leading dimensions), or a tuple or list of such tensors, one per
layer, which are concatenated over tokens, as Hugging Face ``transformers`` does with
the ``router_logits`` that its models return.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._validation import (
    autocast_enabled,
    check_bool,
    check_int,
    check_real_floating,
    check_same_device,
    check_seed,
    describe,
)

__all__ = ["TopKMoE", "load_balancing_loss", "router_z_loss"]


def _layers(router_logits: Tensor | Sequence[Tensor]) -> list[Tensor]:
    r"""The per-layer logits as 2-D tensors ``(tokens, E)`` sharing ``E``, dtype and device."""
    if isinstance(router_logits, Tensor):
        items, names = [router_logits], ["router_logits"]
    elif isinstance(router_logits, (tuple, list)):
        if not router_logits:
            raise ValueError(
                "`router_logits` must hold at least one layer's logits, got an empty "
                f"{type(router_logits).__name__}"
            )
        items = list(router_logits)
        names = [f"router_logits[{i}]" for i in range(len(items))]
    else:
        raise TypeError(
            "`router_logits` must be a tensor (tokens, num_experts) or a tuple or list of "
            f"such tensors, one per layer, got {describe(router_logits)}"
        )
    layers = []
    for item, name in zip(items, names, strict=True):
        if not isinstance(item, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {describe(item)}")
        check_real_floating(item, f"`{name}`")
        if item.dim() < 2 or item.shape[-1] < 1 or item.numel() == 0:
            raise ValueError(
                f"`{name}` must have shape (tokens, num_experts) (or (..., num_experts)) "
                f"with at least one token and one expert, got shape {tuple(item.shape)}"
            )
        first = items[0]
        if item.shape[-1] != first.shape[-1]:
            raise ValueError(
                f"every layer must have the same number of experts (last dimension): "
                f"`{names[0]}` has {first.shape[-1]}, `{name}` has {item.shape[-1]}"
            )
        if item.dtype != first.dtype:
            raise TypeError(
                f"every layer must have the same dtype: `{names[0]}` is {first.dtype}, "
                f"`{name}` is {item.dtype}"
            )
        check_same_device(item, name, first, names[0])
        layers.append(item.reshape(-1, item.shape[-1]))
    return layers


def _token_weights(attention_mask: Tensor, layers: list[Tensor]) -> Tensor:
    r"""The mask as float32 weights, one per row of the concatenated layers."""
    if not isinstance(attention_mask, Tensor):
        raise TypeError(
            f"`attention_mask` must be a torch.Tensor or None, got {describe(attention_mask)}"
        )
    if attention_mask.is_complex():
        raise TypeError(f"`attention_mask` must be a real tensor, got {attention_mask.dtype}")
    tokens = {layer.shape[0] for layer in layers}
    if len(tokens) != 1 or attention_mask.numel() not in tokens:
        raise ValueError(
            "`attention_mask` must have one entry per token of each layer (every layer "
            f"with the same tokens): got {attention_mask.numel()} entries (shape "
            f"{tuple(attention_mask.shape)}) for layers of {sorted(tokens)} tokens"
        )
    check_same_device(attention_mask, "attention_mask", layers[0], "router_logits")
    weights = attention_mask.reshape(-1).to(torch.float32)
    # a value check needs the host: only for CPU tensors (no sync on an accelerator)
    if weights.device.type == "cpu" and (bool((weights < 0).any()) or not weights.sum() > 0):
        raise ValueError(
            "`attention_mask` must be >= 0 (1 keeps a token, 0 drops it) with at least one "
            f"token kept, got {describe(attention_mask)} with min {weights.min().item()} "
            f"and sum {weights.sum().item()}"
        )
    return weights.repeat(len(layers))


def load_balancing_loss(
    router_logits: Tensor | Sequence[Tensor],
    *,
    top_k: int = 2,
    num_experts: int | None = None,
    attention_mask: Tensor | None = None,
) -> Tensor:
    r"""The Switch Transformer / Mixtral load-balancing loss of a top-k router.

    .. math::

        L = E \sum_{e=1}^{E} f_e \, P_e, \qquad
        f_e = \frac{1}{T} \sum_{t=1}^{T} \mathbb{1}\left[e \in \operatorname{top}_k(z_t)\right],
        \qquad
        P_e = \frac{1}{T} \sum_{t=1}^{T} \operatorname{softmax}(z_t)_e

    over the :math:`T` tokens of every layer (the layers are concatenated over tokens).
    :math:`f_e` is the fraction of tokens routed to expert :math:`e`: each token counts
    once for each of its ``top_k`` experts and the count is divided by :math:`T` (not by
    :math:`kT`), so :math:`\sum_e f_e = k`; :math:`P_e` is the expert's mean router
    probability. This is the convention of ``load_balancing_loss_func`` in Hugging Face
    ``transformers`` (Mixtral, Qwen-MoE, OLMoE, ...), which this function matches.

    Values: :math:`k` (``top_k``) whenever the routing is balanced
    (:math:`f_e = k/E`) or the router probabilities are uniform (equal logits in every
    row: :math:`P_e = 1/E`); with ``top_k=1``, :math:`E` when every token goes with
    certainty to the same expert (the collapse the loss penalises).

    Gradient: the top-k selection is piecewise constant, so :math:`f_e` carries no
    gradient; the gradient flows through :math:`P_e` only,
    :math:`\partial L / \partial P_e = E f_e`, which lowers the probability of the
    overloaded experts most.

    Fedus et al. 2021, `Switch Transformers <https://arxiv.org/abs/2101.03961>`_ (eq. 4-6,
    ``top_k=1``); Jiang et al. 2024, `Mixtral of Experts
    <https://arxiv.org/abs/2401.04088>`_ (``top_k=2``).

    Args:
        router_logits: the router's logits :math:`z`, a tensor ``(tokens, E)`` (leading
            dimensions are flattened into tokens), or a tuple or list of such tensors,
            one per layer, with the same :math:`E`, dtype and device. An expert masked
            with :math:`-\infty` has probability 0 and gives finite values and gradients;
            every row needs at least one finite logit.
        top_k: the number of experts each token is routed to, ``1 <= top_k <= E``; the
            experts are the ``top_k`` largest logits of the row. Default: ``2``.
        num_experts: the number of experts :math:`E`, as ``transformers`` takes it; it
            must equal the logits' last dimension (a check). Default: ``None``, the
            logits' last dimension.
        attention_mask: optional weights of the tokens, ``1`` to keep and ``0`` to drop
            (padding), with one entry per token of a layer (e.g. ``(batch, seq)`` for
            logits ``(batch * seq, E)``); the same mask applies to every layer, and
            :math:`f_e` and :math:`P_e` become weighted means over the kept tokens, as in
            ``transformers``. Values are checked (``>= 0``, some token kept) for CPU
            tensors only, to keep an accelerator free of host synchronisation.
            Default: ``None``, every token.

    Returns:
        A 0-d tensor, computed in float32 (float64 for float64 logits) and returned in
        the logits' dtype.

    Example:
        >>> load_balancing_loss(torch.zeros(6, 4), top_k=2)  # uniform probabilities: k
        tensor(2.)
        >>> collapsed = torch.tensor([[30.0, 0.0, 0.0, 0.0]]).repeat(6, 1)
        >>> load_balancing_loss(collapsed, top_k=1)  # every token on expert 0: E
        tensor(4.)
    """
    layers = _layers(router_logits)
    experts = layers[0].shape[-1]
    top_k = check_int(top_k, "top_k", minimum=1)
    if top_k > experts:
        raise ValueError(
            f"`top_k` must be <= the number of experts (the logits' last dimension, "
            f"{experts}), got {top_k}"
        )
    if num_experts is not None:
        num_experts = check_int(num_experts, "num_experts", minimum=1)
        if num_experts != experts:
            raise ValueError(
                f"`num_experts` must equal the logits' last dimension ({experts}), got "
                f"{num_experts}; leave it None to take it from the logits"
            )
    out_dtype = layers[0].dtype
    inner = torch.promote_types(out_dtype, torch.float32)
    logits = torch.cat(layers).to(inner)
    probs = torch.softmax(logits, dim=-1)
    chosen = logits.detach().topk(top_k, dim=-1).indices
    ones = torch.ones(chosen.shape, dtype=probs.dtype, device=probs.device)
    routed = torch.zeros_like(probs).scatter(-1, chosen, ones)  # out of place: vmap-able
    if attention_mask is None:
        fraction = routed.mean(dim=0)
        mean_prob = probs.mean(dim=0)
    else:
        weights = _token_weights(attention_mask, layers).to(inner)
        total = weights.sum()
        fraction = (routed * weights[:, None]).sum(dim=0) / total
        mean_prob = (probs * weights[:, None]).sum(dim=0) / total
    return (experts * (fraction * mean_prob).sum()).to(out_dtype)


def router_z_loss(router_logits: Tensor | Sequence[Tensor]) -> Tensor:
    r"""The ST-MoE router z-loss: the mean squared log-partition of the router logits.

    .. math::

        L_z = \frac{1}{T} \sum_{t=1}^{T} \left( \log \sum_{e=1}^{E} e^{z_{t,e}} \right)^2

    over the :math:`T` tokens of every layer (the layers are concatenated over tokens).
    It penalises large logits, whatever their differences: the router's softmax and
    its exponentials then stay in a range where low-precision rounding does little
    harm, which Zoph et al. found to stabilise training without hurting quality. Its
    gradient is :math:`\frac{2}{T} \operatorname{lse}(z_t) \operatorname{softmax}(z_t)`.

    ``logsumexp`` is computed stably, so logits up to :math:`\pm 10^4` give finite
    values and gradients in float32, and an expert masked with :math:`-\infty` drops out
    of the sum. The value grows with the square of the logits: returned in float16, it
    overflows to ``inf`` once :math:`|\operatorname{lse}| > 255`.

    Zoph et al. 2022, `ST-MoE: Designing Stable and Transferable Sparse Expert Models
    <https://arxiv.org/abs/2202.08906>`_ (eq. 5).

    Args:
        router_logits: the router's logits :math:`z`, a tensor ``(tokens, E)`` (leading
            dimensions are flattened into tokens), or a tuple or list of such tensors,
            one per layer, with the same :math:`E`, dtype and device. Every row needs at
            least one finite logit.

    Returns:
        A 0-d tensor, computed in float32 (float64 for float64 logits) and returned in
        the logits' dtype.

    Example:
        >>> router_z_loss(torch.zeros(3, 4))  # (log 4)^2
        tensor(1.9218)
        >>> router_z_loss(torch.full((3, 4), 10.0))  # the same softmax, (10 + log 4)^2
        tensor(129.6477)
    """
    layers = _layers(router_logits)
    out_dtype = layers[0].dtype
    inner = torch.promote_types(out_dtype, torch.float32)
    lse = torch.logsumexp(torch.cat(layers).to(inner), dim=-1)
    return lse.square().mean().to(out_dtype)


class TopKMoE(nn.Module):
    r"""A mixture-of-experts layer with a linear router and top-k routing.

    .. math::

        z = W_r x + b_r, \qquad p = \operatorname{softmax}(z), \qquad
        y = \sum_{e \in \operatorname{top}_k(z)} g_e \, f_e(x), \qquad
        g_e = \frac{p_e}{\sum_{j \in \operatorname{top}_k(z)} p_j}

    (with ``normalize=False``, :math:`g_e = p_e`, as the Switch Transformer does with
    ``top_k=1``). The normalised gates are computed as the softmax of the chosen logits,
    equal to :math:`g_e` above, so that an expert outside a token's top-k receives
    exactly zero gradient from it (the renormalised ratio does not depend on its logit;
    through the full softmax, autograd would return a rounding residue instead). Each
    expert :math:`f_e` is a linear map ``d_in -> d_out`` or, with
    ``hidden``, a ReLU network with one hidden layer. The router's gradient from the task
    comes through the gates :math:`g_e` only: with ``top_k=1`` and ``normalize=True`` the
    gate is always 1 and the router learns nothing from the task, so that combination is
    refused. Shazeer et al. 2017, `Outrageously Large Neural Networks: The Sparsely-Gated
    Mixture-of-Experts Layer <https://arxiv.org/abs/1701.06538>`_; Jiang et al. 2024,
    `Mixtral of Experts <https://arxiv.org/abs/2401.04088>`_ (top-2, normalised gates).

    For small models: every expert is computed on every token and the ``top_k`` chosen
    ones are kept (exact, and easy to batch with ``torch.vmap``); a large model sends each
    token only to its experts instead.

    Args:
        d_in: the size of a token's features, ``>= 1``.
        d_out: the size of the output, ``>= 1``.
        num_experts: the number of experts :math:`E`, ``>= 1``.
        top_k: the experts each token uses, ``1 <= top_k <= num_experts``. Default: ``2``.
        hidden: the width of each expert's hidden layer, or ``None`` for linear experts.
            Default: ``None``.
        normalize: renormalise the chosen experts' probabilities to sum to 1 (Mixtral).
            Default: ``True``.
        seed: when given, the weights are initialised from this seed without touching
            the global random state. Default: ``None``.

    Shape:
        - Input: ``(*, d_in)``.
        - Output: a tuple ``(output, router_logits)``, shapes ``(*, d_out)`` and
          ``(*, num_experts)``; the logits go to :func:`load_balancing_loss` and
          :func:`router_z_loss`.

    Example:
        >>> moe = TopKMoE(3, 1, num_experts=4, top_k=2, seed=0)
        >>> out, logits = moe(torch.randn(5, 3))
        >>> out.shape, logits.shape
        (torch.Size([5, 1]), torch.Size([5, 4]))
        >>> loss = out.square().mean() + 0.01 * load_balancing_loss(logits, top_k=2)
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        num_experts: int,
        *,
        top_k: int = 2,
        hidden: int | None = None,
        normalize: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.d_in = check_int(d_in, "d_in", minimum=1)
        self.d_out = check_int(d_out, "d_out", minimum=1)
        self.num_experts = check_int(num_experts, "num_experts", minimum=1)
        self.top_k = check_int(top_k, "top_k", minimum=1)
        if self.top_k > self.num_experts:
            raise ValueError(
                f"`top_k` must be <= `num_experts` ({self.num_experts}), got {self.top_k}"
            )
        self.hidden = None if hidden is None else check_int(hidden, "hidden", minimum=1)
        self.normalize = check_bool(normalize, "normalize")
        if self.top_k == 1 and self.normalize:
            raise ValueError(
                "`top_k=1` with `normalize=True` gives every token a gate of 1, so the "
                "router would receive no gradient from the task: pass `normalize=False` "
                "(the Switch Transformer's gate) or use `top_k >= 2`"
            )
        self.seed = None if seed is None else check_seed(seed, "seed")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.router = nn.Linear(self.d_in, self.num_experts)
            widths = [self.d_in, self.d_out] if hidden is None else [self.d_in, hidden, self.d_out]
            self.weights = nn.ParameterList()
            self.biases = nn.ParameterList()
            for fan_in, fan_out in itertools.pairwise(widths):
                bound = 1 / math.sqrt(fan_in)  # nn.Linear's default, per expert
                w = torch.empty(self.num_experts, fan_in, fan_out).uniform_(-bound, bound)
                b = torch.empty(self.num_experts, fan_out).uniform_(-bound, bound)
                self.weights.append(nn.Parameter(w))
                self.biases.append(nn.Parameter(b))

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"`x` must be a torch.Tensor, got {describe(x)}")
        if x.dim() < 1 or x.shape[-1] != self.d_in:
            raise ValueError(f"`x` must have shape (*, {self.d_in}), got {tuple(x.shape)}")
        check_real_floating(x, "`x`")
        dtype = self.router.weight.dtype
        if x.dtype != dtype and not autocast_enabled(x.device.type):
            raise TypeError(
                f"`x` must have the model's dtype {dtype}, got {x.dtype}; convert one of "
                f"them (e.g. `x.to({dtype})` or `model.to({x.dtype})`)"
            )

    def gates(self, router_logits: Tensor) -> Tensor:
        r"""The gate of every expert for every token, ``(*, E)``: zero outside the top-k."""
        if self.normalize:  # the softmax over the chosen logits: no path to the others
            chosen, index = router_logits.topk(self.top_k, dim=-1)
            gates = torch.softmax(chosen, dim=-1)
        else:
            gates, index = torch.softmax(router_logits, dim=-1).topk(self.top_k, dim=-1)
        return torch.zeros_like(router_logits).scatter(-1, index, gates)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(output, router_logits)`` for tokens ``x`` of shape ``(*, d_in)``."""
        self._check_input(x)
        router_logits = self.router(x)
        h = torch.einsum("...i,eio->...eo", x, self.weights[0]) + self.biases[0]
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.einsum("...ei,eio->...eo", torch.relu(h), w) + b
        output = (self.gates(router_logits).unsqueeze(-1) * h).sum(dim=-2)
        return output, router_logits

    def extra_repr(self) -> str:
        return (
            f"d_in={self.d_in}, d_out={self.d_out}, num_experts={self.num_experts}, "
            f"top_k={self.top_k}, hidden={self.hidden}, normalize={self.normalize}, "
            f"seed={self.seed!r}"
        )
