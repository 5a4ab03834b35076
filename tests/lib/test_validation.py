"""The shared input checks: one helper per kind of check, each with its error type."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multiloss_helpers._validation import (
    check_bool,
    check_choice,
    check_labels,
    check_params,
    check_reduction,
    check_scalar,
)


def test_check_bool_accepts_only_bools():
    assert check_bool(True, "flag") is True
    for bad in (1, 0, "yes", torch.tensor(True), None):
        with pytest.raises(TypeError, match="`flag` must be a bool"):
            check_bool(bad, "flag")


def test_check_choice_lists_the_choices():
    assert check_choice("b", "kind", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"`kind` must be one of \('a', 'b'\), got 'c'"):
        check_choice("c", "kind", ("a", "b"))
    with pytest.raises(ValueError, match="`kind` must be one of"):
        check_choice(torch.tensor(1), "kind", (1, 2))
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        check_reduction("avg")


def test_check_scalar_type_then_shape():
    out = check_scalar(torch.tensor([2.0]), "loss")
    assert out.shape == () and float(out) == 2.0
    with pytest.raises(TypeError, match="`loss` must be a scalar tensor"):
        check_scalar(2.0, "loss")
    with pytest.raises(ValueError, match=r"`loss` must be a scalar tensor \(one element\)"):
        check_scalar(torch.ones(3), "loss")


def test_check_labels_one_rule_for_bool_and_floats():
    labels = torch.tensor([0, 2, 1])
    assert check_labels(labels, "target", dim=1) is labels
    with pytest.raises(TypeError, match="a bool tensor is a mask"):
        check_labels(torch.tensor([True, False]), "target")
    with pytest.raises(TypeError, match="`target` must hold integer class labels"):
        check_labels(torch.tensor([0.0, 1.0]), "target")
    with pytest.raises(TypeError, match="`target` must be a tensor of integer class labels"):
        check_labels([0, 1], "target")
    with pytest.raises(ValueError, match="`target` must be a 1-D tensor"):
        check_labels(torch.zeros(2, 2, dtype=torch.long), "target", dim=1)


def test_check_params_normalises_every_form():
    net = nn.Linear(2, 1)
    params = list(net.parameters())
    assert check_params(net) == params
    assert check_params(iter(params)) == params
    assert check_params(dict(net.named_parameters())) == params
    assert check_params(params[0]) == [params[0]]
    with pytest.raises(TypeError, match=r"got one .*wrap it in a list"):
        check_params(params[0], "shared_params", single=False)
    with pytest.raises(ValueError, match="`params` is empty"):
        check_params([])
    with pytest.raises(TypeError, match=r"`params\[1\]` must be a tensor"):
        check_params([params[0], 3.0])
    with pytest.raises(TypeError, match="`params` must be a module"):
        check_params(3)
    with pytest.raises(ValueError, match="does not require grad"):
        check_params([torch.zeros(2)], requires_grad=True)
