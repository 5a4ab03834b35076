r"""Paired comparisons over seeds: the mean difference, its standard error and a verdict.

The book compares two training recipes by running both on the same seeds (the same data
and initialisation for both arms) and looking at the per-seed differences. With ``n``
seeds, a difference is called clear when its mean is further from zero than
:math:`t_{1 - \alpha/2,\, n-1}` standard errors, Student's two-sided threshold for ``n``
paired samples; otherwise the verdict is "no clear difference". The threshold is computed
from the number of pairs, so that it cannot drift from the number of seeds a cell runs.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._validation import check_float, check_int, describe

__all__ = ["PairedDifference", "paired_difference", "t_quantile"]


def _betainc_fraction(x: float, a: float, b: float) -> float:
    r"""The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def _betainc(x: float, a: float, b: float) -> float:
    r"""The regularised incomplete beta function :math:`I_x(a, b)` for ``0 <= x <= 1``."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (
        a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    )
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side
        return math.exp(log_front) * _betainc_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _betainc_fraction(1.0 - x, b, a) / b


def _t_upper_tail(t: float, df: float) -> float:
    r"""``P(T > t)`` for ``t >= 0`` and Student's ``T`` with ``df`` degrees of freedom."""
    return 0.5 * _betainc(df / (df + t * t), df / 2.0, 0.5)


def t_quantile(p: float, df: int) -> float:
    r"""The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Solves :math:`P(T \le t) = p` by bisection on the distribution function, written with
    the regularised incomplete beta function:
    :math:`P(T > t) = \tfrac12 I_{\nu / (\nu + t^2)}(\nu/2, 1/2)` for :math:`t \ge 0`.
    Accurate to about ``1e-9`` relative, with no dependency beyond the standard library.

    Args:
        p (float): the probability, in the open interval (0, 1).
        df (int): the degrees of freedom, at least 1 (``n - 1`` for ``n`` paired samples).

    Returns:
        float: the quantile; negative for ``p < 0.5``, zero at ``p = 0.5``.

    Example:
        >>> round(t_quantile(0.975, 4), 4)  # two-sided 95% for 5 paired seeds
        2.7764
        >>> round(t_quantile(0.975, 1_000_000), 3)  # the normal distribution's 1.96
        1.96
    """
    p = check_float(p, "p", minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
    df = check_int(df, "df", minimum=1)
    if p == 0.5:
        return 0.0
    tail = 1.0 - p if p > 0.5 else p  # P(T > t) for the positive quantile
    high = 1.0
    while _t_upper_tail(high, df) > tail:
        high *= 2.0
    low = 0.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if _t_upper_tail(middle, df) > tail:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    quantile = 0.5 * (low + high)
    return quantile if p > 0.5 else -quantile


class PairedDifference(NamedTuple):
    r"""The result of :func:`paired_difference`: ``a - b`` seed by seed, summarised.

    A named tuple of five fields: ``mean``, the mean of the per-pair differences
    ``a[i] - b[i]``; ``se``, its standard error (the sample standard deviation, with
    ``n - 1`` in the denominator, over :math:`\sqrt{n}`); ``n``, the number of pairs;
    ``t_critical``, Student's two-sided threshold for ``n - 1`` degrees of freedom at the
    requested confidence; and ``verdict``: ``"higher"`` (``a`` above ``b``) when
    ``mean > t_critical * se``, ``"lower"`` when ``mean < -t_critical * se``, else
    ``"no clear difference"``. ``_asdict()`` gives them as a dict, for a table row.

    Example:
        >>> result = paired_difference([3.0, 5.0, 4.5], [2.0, 4.5, 3.0])
        >>> isinstance(result, PairedDifference), result.n, result.verdict
        (True, 3, 'no clear difference')
        >>> round(result.t, 2), round(result.t_critical, 2)
        (3.46, 4.3)
    """

    mean: float
    se: float
    n: int
    t_critical: float
    verdict: str

    @property
    def t(self) -> float:
        r"""``mean / se``: the paired t statistic (``±inf`` when every difference is equal)."""
        if self.se > 0:
            return self.mean / self.se
        return math.copysign(math.inf, self.mean) if self.mean != 0 else 0.0

    @property
    def clear(self) -> bool:
        r"""Whether the difference is clear, in either direction."""
        return self.verdict != "no clear difference"

    def __str__(self) -> str:
        return f"{self.mean:+.3g} ± {self.se:.2g} ({self.verdict})"


def _as_values(value: Any, name: str) -> Tensor:
    r"""One side of a paired comparison as a 1-D float64 tensor of finite numbers."""
    if hasattr(value, "to_numpy") and not isinstance(value, Tensor):  # pandas
        value = value.to_numpy()
    if isinstance(value, Tensor):
        values = value.detach()
    elif type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        try:
            values = torch.tensor(value) if value.ndim else torch.tensor(value.item())
        except TypeError:  # an object or string array
            raise TypeError(
                f"`{name}` must hold real numbers, got a NumPy array of dtype {value.dtype}"
            ) from None
    elif isinstance(value, list | tuple) and all(
        isinstance(v, Real) and not isinstance(v, bool) for v in value
    ):
        values = torch.tensor([float(v) for v in value], dtype=torch.float64)
    else:
        raise TypeError(
            f"`{name}` must be a 1-D tensor, NumPy array, pandas Series or a list of "
            f"numbers, got {describe(value)}"
        )
    if values.is_complex() or not (
        values.is_floating_point()
        or values.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    ):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {values.dtype}")
    if values.ndim != 1:
        raise ValueError(
            f"`{name}` must be 1-D (one value per seed), got shape {tuple(values.shape)}"
        )
    values = values.to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(values).all():
        bad = int((~torch.isfinite(values)).nonzero()[0])
        raise ValueError(f"`{name}` must be finite, got {values[bad].item()} at position {bad}")
    return values


def paired_difference(a: Any, b: Any, *, confidence: float = 0.95) -> PairedDifference:
    r"""Compare two arms run on the same seeds: the mean of ``a - b``, its SE, a verdict.

    With per-seed differences :math:`d_i = a_i - b_i`, :math:`i = 1 \dots n`, the mean
    :math:`\bar d`, the standard error :math:`s_d / \sqrt{n}` and Student's two-sided
    threshold :math:`t_{(1 + c)/2,\, n - 1}` for confidence :math:`c`, the verdict is
    "higher" when :math:`\bar d > t \cdot \mathrm{SE}`, "lower" when
    :math:`\bar d < -t \cdot \mathrm{SE}`, and "no clear difference" otherwise. Pairing
    removes what the two arms share on a seed (its data, its initialisation), so a small
    but consistent difference is seen through a large spread between seeds.

    Args:
        a: one value per seed for the first arm: a 1-D tensor, NumPy array, pandas Series
            or list of numbers.
        b: the second arm's values on the same seeds, in the same order, in any of those
            forms.
        confidence (float): the two-sided confidence of the verdict, in (0, 1).
            Default: ``0.95``.

    Returns:
        PairedDifference: ``mean``, ``se``, ``n``, ``t_critical`` and ``verdict``;
        ``str()`` gives ``"+0.12 ± 0.031 (higher)"``.

    Example:
        >>> result = paired_difference([0.81, 0.78, 0.85, 0.80], [0.74, 0.75, 0.79, 0.71])
        >>> print(result)
        +0.0625 ± 0.013 (higher)
        >>> round(result.t_critical, 3)  # Student's t, 3 degrees of freedom
        3.182
        >>> paired_difference([1.0, 2.0, 3.0], [1.1, 1.9, 3.05]).verdict
        'no clear difference'
    """
    confidence = check_float(
        confidence, "confidence", minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True
    )
    first, second = _as_values(a, "a"), _as_values(b, "b")
    if first.numel() != second.numel():
        raise ValueError(
            f"`a` and `b` must hold one value per seed each, for the same seeds: got "
            f"{first.numel()} and {second.numel()} values"
        )
    n = first.numel()
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 pairs, got {n}")
    diff = first - second
    mean = diff.mean().item()
    se = (diff.std(correction=1) / math.sqrt(n)).item()
    t_critical = t_quantile(0.5 + confidence / 2, n - 1)
    if mean > t_critical * se:
        verdict = "higher"
    elif mean < -t_critical * se:
        verdict = "lower"
    else:
        verdict = "no clear difference"
    return PairedDifference(mean, se, n, t_critical, verdict)
