"""fit, evaluate, predict and unpack_loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh


def multitask_loss(model, batch):
    out = model(batch["x"])
    parts = {
        "cls": F.cross_entropy(out["cls"], batch["y_cls"]),
        "reg": F.mse_loss(out["reg"], batch["y_reg"]),
    }
    return parts["cls"] + parts["reg"], parts


def _setup(n=120, seed=0):
    data = mlh.make_multitask_data(n, n_features=4, seed=seed)
    model = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(16,), seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return data, model, optimizer


def test_fit_records_every_component_and_learns():
    data, model, optimizer = _setup()
    history = mlh.fit(
        model,
        multitask_loss,
        mlh.BatchLoader(data, 32),
        optimizer,
        epochs=15,
        val_loader=mlh.BatchLoader(data, 50, shuffle=False),
        progress=False,
    )
    assert history.components == ["total", "cls", "reg"]
    assert history.num_steps == 15 * 4 and history.num_epochs == 15
    assert len(history.epochs("cls", split="val")) == 15
    assert history.last("total") < 0.7 * history.epochs("total")[0]
    for t, c, r in zip(history.steps("total"), history.steps("cls"), history.steps("reg")):
        assert t == pytest.approx(c + r, rel=1e-5)


def test_fit_is_deterministic():
    runs = []
    for _ in range(2):
        data, model, optimizer = _setup()
        runs.append(
            mlh.fit(
                model,
                multitask_loss,
                mlh.BatchLoader(data, 32, seed=1),
                optimizer,
                epochs=3,
                progress=False,
            ).steps("total")
        )
    assert runs[0] == runs[1]


def test_epoch_mean_is_weighted_by_batch_size():
    data, model, _ = _setup(n=70)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    history = mlh.fit(
        model,
        multitask_loss,
        mlh.BatchLoader(data, 32, shuffle=False),
        frozen,
        epochs=1,
        progress=False,
    )
    whole = multitask_loss(model, data)[0].detach()
    assert history.last("total") == pytest.approx(float(whole), rel=1e-5)


def test_validation_is_evaluated_in_eval_mode_without_grad():
    data, model, optimizer = _setup()
    modes = []

    def loss_fn(m, batch):
        modes.append((m.training, torch.is_grad_enabled()))
        return multitask_loss(m, batch)

    mlh.fit(
        model,
        loss_fn,
        mlh.BatchLoader(data, 60),
        optimizer,
        epochs=1,
        val_loader=mlh.BatchLoader(data, 120),
        progress=False,
    )
    assert modes == [(True, True), (True, True), (False, False)]
    assert model.training


def test_three_result_forms():
    data, model, optimizer = _setup()

    class Result:
        def __init__(self, total, components):
            self.total, self.components = total, components

    forms = {
        "tensor": lambda m, b: multitask_loss(m, b)[0],
        "tuple": multitask_loss,
        "object": lambda m, b: Result(*multitask_loss(m, b)),
    }
    for name, fn in forms.items():
        history = mlh.fit(model, fn, mlh.BatchLoader(data, 60), optimizer, epochs=1, progress=False)
        expected = ["total"] if name == "tensor" else ["total", "cls", "reg"]
        assert history.components == expected, name


def test_history_can_be_continued():
    data, model, optimizer = _setup()
    loader = mlh.BatchLoader(data, 60)
    history = mlh.fit(model, multitask_loss, loader, optimizer, epochs=2, progress=False)
    mlh.fit(model, multitask_loss, loader, optimizer, epochs=3, progress=False, history=history)
    assert history.num_epochs == 5
    assert history.to_frame().epoch.max() == 4


def test_scheduler_and_clipping():
    data, model, _ = _setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    mlh.fit(
        model,
        multitask_loss,
        mlh.BatchLoader(data, 60),
        optimizer,
        epochs=3,
        scheduler=scheduler,
        max_grad_norm=1e-3,
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    grads = [p.grad for p in model.parameters()]
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) <= 1e-3 + 1e-9


def test_progress_bar_runs(capsys):
    data, model, optimizer = _setup()
    mlh.fit(
        model,
        multitask_loss,
        mlh.BatchLoader(data, 60),
        optimizer,
        epochs=2,
        progress=True,
        val_loader=mlh.BatchLoader(data, 120),
    )
    err = capsys.readouterr().err
    assert "epochs" in err and "2/2" in err


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_loss_without_graph_is_refused():
    data, model, optimizer = _setup()

    def detached(m, batch):
        parts = multitask_loss(m, batch)[1]
        return torch.tensor([parts["cls"], parts["reg"]]).sum()  # cuts the graph

    with pytest.raises(ValueError, match="does not require grad"):
        mlh.fit(model, detached, mlh.BatchLoader(data, 60), optimizer, epochs=1, progress=False)


def test_non_finite_loss_raises_with_location():
    data, model, optimizer = _setup()

    def exploding(m, batch):
        return multitask_loss(m, batch)[0] * float("inf")

    with pytest.raises(FloatingPointError, match="step 0 of epoch 0"):
        mlh.fit(model, exploding, mlh.BatchLoader(data, 60), optimizer, epochs=1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "`epochs` must be >= 1"),
        ({"optimizer": "adam"}, TypeError, "`optimizer` must be a torch.optim.Optimizer"),
        ({"train_loader": torch.zeros(3)}, TypeError, "`train_loader` must be an iterable"),
        ({"val_loader": {"x": torch.zeros(3)}}, TypeError, "`val_loader` must be an iterable"),
        ({"loss_fn": 3}, TypeError, "`loss_fn` must be callable"),
        ({"model": "net"}, TypeError, "`model` must be a torch.nn.Module"),
        ({"progress": "yes"}, TypeError, "`progress` must be a bool"),
        ({"max_grad_norm": 0.0}, ValueError, "`max_grad_norm` must be > 0"),
        ({"history": []}, TypeError, "`history` must be a LossHistory"),
    ],
)
def test_fit_bad_arguments(kwargs, error, match):
    data, model, optimizer = _setup()
    args = {
        "model": model,
        "loss_fn": multitask_loss,
        "train_loader": mlh.BatchLoader(data, 60),
        "optimizer": optimizer,
        "epochs": 1,
        "progress": False,
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        mlh.fit(**args)


def test_component_named_total_is_refused():
    with pytest.raises(ValueError, match="may not be called 'total'"):
        mlh.unpack_loss((torch.tensor(1.0), {"total": torch.tensor(1.0)}))


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ([1.0, {}], "must return a scalar tensor, a pair"),
        ((torch.ones(2), {}), "the total loss must be a scalar tensor"),
        ((torch.tensor(1.0), [1.0]), "must be a mapping"),
    ],
)
def test_unpack_bad_results(result, match):
    with pytest.raises(TypeError, match=match):
        mlh.unpack_loss(result)


def test_evaluate_is_the_sample_weighted_mean_and_restores_mode():
    data, model, _ = _setup(n=70)
    model.train()
    means = mlh.evaluate(model, multitask_loss, mlh.BatchLoader(data, 32, shuffle=False))
    assert model.training
    model.eval()
    with torch.no_grad():
        total, parts = multitask_loss(model, data)
    assert means["total"] == pytest.approx(float(total), rel=1e-5)
    assert means["cls"] == pytest.approx(float(parts["cls"]), rel=1e-5)


def test_evaluate_empty_loader():
    _, model, _ = _setup()
    with pytest.raises(ValueError, match="yielded no batch"):
        mlh.evaluate(model, multitask_loss, [])


def test_predict_concatenates_in_order():
    data, model, _ = _setup(n=70)
    out = mlh.predict(model, mlh.BatchLoader(data, 32, shuffle=False))
    model.eval()
    with torch.no_grad():
        ref = model(data["x"])
    torch.testing.assert_close(out["cls"], ref["cls"])
    tensor_model = torch.nn.Linear(4, 2)
    out = mlh.predict(tensor_model, [(data["x"][:10], None), (data["x"][10:], None)])
    torch.testing.assert_close(out, tensor_model(data["x"]).detach())


def test_predict_bad_input_key():
    data, model, _ = _setup()
    with pytest.raises(ValueError, match="`input_key` 'inputs' is not a key"):
        mlh.predict(model, mlh.BatchLoader(data, 60), input_key="inputs")


def test_custom_backward_replaces_total_backward():
    data, model, optimizer = _setup()
    calls = []

    def only_cls(total, components):
        calls.append(sorted(components))
        components["cls"].backward()

    history = mlh.fit(
        model,
        multitask_loss,
        mlh.BatchLoader(data, 60),
        optimizer,
        epochs=1,
        progress=False,
        backward=only_cls,
    )
    assert calls == [["cls", "reg"], ["cls", "reg"]]
    assert all(
        p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.head_parameters("reg")
    )
    assert history.num_steps == 2
    with pytest.raises(TypeError, match="`backward` must be callable"):
        mlh.fit(
            model,
            multitask_loss,
            mlh.BatchLoader(data, 60),
            optimizer,
            epochs=1,
            progress=False,
            backward="pcgrad",
        )
