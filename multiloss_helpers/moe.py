r"""Auxiliary losses of a mixture-of-experts router: load balancing and the router z-loss.

A mixture-of-experts layer sends each token to the ``top_k`` experts with the largest
router logits. Trained on its task loss alone, the router tends to collapse onto a few
experts; :func:`load_balancing_loss` (Switch Transformer, Mixtral) pushes the load
back towards uniform, and :func:`router_z_loss` (ST-MoE) keeps the router logits small,
so that the router's softmax stays in a range where rounding does not hurt. Both are
one more loss component: ``loss = task + alpha * load_balancing_loss(...) + beta *
router_z_loss(...)``.

Both take the router logits of one layer, a tensor ``(tokens, E)`` (or ``(..., E)``,
flattened over the leading dimensions), or a tuple or list of such tensors, one per
layer, which are concatenated over tokens, as Hugging Face ``transformers`` does with
the ``router_logits`` that its models return.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._validation import check_int, check_real_floating, check_same_device, describe

__all__ = ["load_balancing_loss", "router_z_loss"]


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
    routed = torch.zeros_like(probs, requires_grad=False).scatter_(-1, chosen, 1.0)
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
