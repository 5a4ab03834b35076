"""fit, evaluate, predict and unpack_loss."""

from __future__ import annotations

import copy

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
    ("result", "error", "match"),
    [
        ([1.0, {}], TypeError, "must return a scalar tensor, a pair"),
        ((1.0, {}), TypeError, "the total loss must be a scalar tensor"),
        ((torch.ones(2), {}), ValueError, r"the total loss must be a scalar tensor \(one element"),
        ((torch.tensor(1.0), [1.0]), TypeError, "must be a mapping"),
        ((torch.tensor(1.0), {"a": 1.0}), TypeError, "component 'a' must be a scalar tensor"),
        ((torch.tensor(1.0), {"a": torch.ones(3)}), ValueError, r"got shape \(3,\)"),
        ((torch.tensor(1.0), {"a": torch.tensor(3)}), TypeError, "must be a floating-point"),
        ((torch.tensor(1), {}), TypeError, "'total' must be a floating-point"),
    ],
)
def test_unpack_bad_results(result, error, match):
    with pytest.raises(error, match=match):
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


# ---------------------------------------------------------------- issue 11: fit under faults
def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(model, params):
    return all(torch.equal(p, q) for p, q in zip(model.parameters(), params))


class _Snapshots(mlh.Callback):
    def __init__(self):
        self.params = []

    def on_step_end(self, epoch, history, model):
        self.params.append(_params(model))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_raises_at_its_step_before_the_update(bad):
    data, model, optimizer = _setup()
    calls = []

    def second_batch_bad(m, batch):
        calls.append(None)
        total, parts = multitask_loss(m, batch)
        return (total * bad, parts) if len(calls) == 2 else (total, parts)

    snapshots = _Snapshots()
    with pytest.raises(
        FloatingPointError, match="at step 1 of epoch 0; the optimizer step was not"
    ):
        mlh.fit(
            model,
            second_batch_bad,
            mlh.BatchLoader(data, 40),
            optimizer,
            epochs=2,
            progress=False,
            callbacks=[snapshots],
        )
    assert len(snapshots.params) == 1
    assert _same(model, snapshots.params[0])  # the bad step left the parameters alone


def test_non_finite_check_once_per_epoch_says_the_steps_were_applied():
    data, model, optimizer = _setup()

    def exploding(m, batch):
        total, parts = multitask_loss(m, batch)
        return total * float("inf"), parts

    with pytest.raises(FloatingPointError, match="step 0 of epoch 0; that step and the later"):
        mlh.fit(
            model,
            exploding,
            mlh.BatchLoader(data, 60),
            optimizer,
            epochs=1,
            progress=False,
            check_finite="epoch",
        )


def test_bad_component_is_refused_before_the_step():
    data, model, optimizer = _setup()
    before = _params(model)

    def per_sample(m, batch):
        total, parts = multitask_loss(m, batch)
        return total, {
            **parts,
            "reg": F.mse_loss(m(batch["x"])["reg"], batch["y_reg"], reduction="none"),
        }

    def count(m, batch):
        total, parts = multitask_loss(m, batch)
        return total, {**parts, "hits": (m(batch["x"])["cls"].argmax(1) == batch["y_cls"]).sum()}

    loader = mlh.BatchLoader(data, 60)
    with pytest.raises(ValueError, match="component 'reg' must be a scalar tensor"):
        mlh.fit(model, per_sample, loader, optimizer, epochs=1, progress=False)
    with pytest.raises(TypeError, match="component 'hits' must be a floating-point tensor"):
        mlh.fit(model, count, loader, optimizer, epochs=1, progress=False)
    assert _same(model, before)


@pytest.mark.parametrize("start_training", [True, False])
def test_mode_is_restored_on_every_exit_path(start_training):
    data, model, optimizer = _setup()
    model.train(start_training)

    def fails_in_validation(m, batch):
        if not m.training:
            raise RuntimeError("validation broke")
        return multitask_loss(m, batch)

    def fails_in_training(m, batch):
        raise RuntimeError("training broke")

    loader = mlh.BatchLoader(data, 60)
    for fn in (fails_in_validation, fails_in_training):
        with pytest.raises(RuntimeError, match="broke"):
            mlh.fit(model, fn, loader, optimizer, epochs=1, val_loader=loader, progress=False)
        assert model.training is start_training
    with pytest.raises(RuntimeError, match="validation broke"):
        mlh.evaluate(model, fails_in_validation, loader)
    assert model.training is start_training
    mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, val_loader=loader, progress=False)
    assert model.training is start_training


def test_predict_restores_mode_when_the_model_raises():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(RuntimeError):
        mlh.predict(model, [torch.zeros(3, 5)])
    assert model.training


def test_eval_mode_context_restores_on_error():
    from multiloss_helpers.train import _eval_mode

    model = torch.nn.Dropout()
    with pytest.raises(KeyError), _eval_mode(model):
        assert not model.training
        raise KeyError
    assert model.training


def test_resumed_partial_epoch_does_not_merge_with_the_next():
    data, model, optimizer = _setup()
    calls = []

    def fails_on_third(m, batch):
        calls.append(None)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return multitask_loss(m, batch)

    history = mlh.LossHistory()
    loader = mlh.BatchLoader(data, 60)
    with pytest.raises(RuntimeError, match="interrupted"):
        mlh.fit(model, fails_on_third, loader, optimizer, epochs=2, history=history, progress=False)
    assert history.num_epochs == 1 and history.num_steps == 2 and history.next_epoch == 1
    history.log_step({"total": 1.0}, epoch=1)  # a partial epoch 1
    assert history.num_epochs == 1 and history.next_epoch == 2
    mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, history=history, progress=False)
    frame = history.to_frame()
    steps = frame[(frame.level == "step") & (frame.component == "total")]
    assert steps.groupby("epoch").size().to_dict() == {0: 2, 1: 1, 2: 2}


def _gated_batches():
    """Two batches of 3 samples; the 'aux' loss is present only in the second, at 4.46."""
    batches = [{"x": torch.zeros(3, 1), "aux": None}, {"x": torch.zeros(3, 1), "aux": 4.46}]
    return batches


def _gated_loss(model, batch):
    total = model(batch["x"]).sum() * 0 + 1.0
    parts = {"main": total}
    if batch["aux"] is not None:
        parts["aux"] = total * 0 + batch["aux"]
    return total, parts


def test_absent_component_is_averaged_over_the_batches_that_have_it():
    model = torch.nn.Linear(1, 1)
    means = mlh.evaluate(model, _gated_loss, _gated_batches())
    assert means["aux"] == pytest.approx(4.46)
    assert means["main"] == pytest.approx(1.0)
    history = mlh.fit(
        model,
        _gated_loss,
        _gated_batches(),
        torch.optim.SGD(model.parameters(), lr=0.0),
        epochs=1,
        progress=False,
    )
    assert history.last("aux") == pytest.approx(4.46)
    assert history.steps("aux")[0] != history.steps("aux")[0]  # nan where absent


# ---------------------------------------------------------------- callbacks
def test_callbacks_are_called_in_order_with_global_epochs():
    data, model, optimizer = _setup()
    events = []

    class Recorder(mlh.Callback):
        def on_epoch_start(self, epoch, history, model):
            events.append(("start", epoch, history.num_epochs))

        def on_step_end(self, epoch, history, model):
            events.append(("step", epoch, history.num_steps))

        def on_epoch_end(self, epoch, history, model):
            events.append(("end", epoch, len(history.epochs("total", split="val"))))

    def plain(epoch, history, model):
        events.append(("plain", epoch))

    loader = mlh.BatchLoader(data, 60)
    history = mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, progress=False)
    mlh.fit(
        model,
        multitask_loss,
        loader,
        optimizer,
        epochs=2,
        val_loader=loader,
        history=history,
        progress=False,
        callbacks=[Recorder(), plain],
    )
    assert events == [
        ("start", 1, 1), ("step", 1, 3), ("step", 1, 4), ("end", 1, 1), ("plain", 1),
        ("start", 2, 2), ("step", 2, 5), ("step", 2, 6), ("end", 2, 2), ("plain", 2),
    ]  # fmt: skip


def test_callback_sets_a_weight_each_epoch_instead_of_a_loop_over_fit():
    data, model, optimizer = _setup()
    plan = {"reg": 0.0}

    class Ramp(mlh.Callback):
        def on_epoch_start(self, epoch, history, model):
            plan["reg"] = mlh.ramp(epoch, length=2)

    def loss_fn(m, batch):
        _, parts = multitask_loss(m, batch)
        weight = torch.tensor(plan["reg"])
        return parts["cls"] + weight * parts["reg"], {**parts, "w": weight}

    history = mlh.fit(
        model, loss_fn, mlh.BatchLoader(data, 60), optimizer, epochs=3, progress=False,
        callbacks=[Ramp()],
    )  # fmt: skip
    assert history.epochs("w") == [0.0, 0.5, 1.0]


def test_callback_repr_and_bad_callbacks():
    assert repr(mlh.Callback()) == "Callback()"
    data, model, optimizer = _setup()
    loader = mlh.BatchLoader(data, 60)
    with pytest.raises(TypeError, match=r"`callbacks\[1\]` must have a method among"):
        mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, callbacks=[print, 3])
    with pytest.raises(TypeError, match="`callbacks` must be a list"):
        mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, callbacks=print)
    # a class raised "on_epoch_start() missing 1 required positional argument" mid-run
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        TypeError, match=r"`callbacks\[0\]` must be a callback instance.*Callback\(\)"
    ):
        mlh.fit(model, multitask_loss, loader, optimizer, epochs=1, callbacks=[mlh.Callback])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ---------------------------------------------------------------- weighting protocol
class FixedWeighting:
    """A stand-in that follows the mlh.Weighting contract with fixed weights."""

    def __init__(self, weights):
        self.num_tasks = len(weights)
        self.weights = torch.tensor(weights)
        self.epoch_losses = []

    def backward(self, losses):
        (self.weights.to(losses) * losses).sum().backward()
        return self.weights.detach()

    def epoch_end(self, epoch_losses):
        self.epoch_losses.append(epoch_losses)


class LearnedWeighting(torch.nn.Module):
    """Uncertainty-like: learnable log-variances that receive a gradient in backward."""

    def __init__(self, num_tasks):
        super().__init__()
        self.num_tasks = num_tasks
        self.log_vars = torch.nn.Parameter(torch.zeros(num_tasks))

    @property
    def weights(self):
        return self.num_tasks * torch.softmax(-self.log_vars.detach(), 0)

    def backward(self, losses):
        (0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum().backward()
        return torch.exp(-self.log_vars).detach()

    def epoch_end(self, epoch_losses):
        pass


def test_weighting_drives_backward_and_records_the_weights():
    data, model, optimizer = _setup()
    weighting = FixedWeighting([0.5, 1.5])
    loader = mlh.BatchLoader(data, 120, shuffle=False)
    reference = copy.deepcopy(model)
    history = mlh.fit(
        model, multitask_loss, loader, optimizer, epochs=2, progress=False, weighting=weighting
    )
    assert history.components == ["total", "cls", "reg", "weight/cls", "weight/reg"]
    assert history.weight_names == ["cls", "reg"]
    assert history.weights() == {"cls": [0.5, 0.5], "reg": [1.5, 1.5]}
    assert history.weights(level="step") == {"cls": [0.5, 0.5], "reg": [1.5, 1.5]}
    frame = history.to_frame()
    assert set(frame.component) >= {"weight/cls", "weight/reg"}
    assert len(weighting.epoch_losses) == 2
    torch.testing.assert_close(
        weighting.epoch_losses[0],
        torch.tensor([history.epochs("cls")[0], history.epochs("reg")[0]]),
    )
    # the first step's gradient is the weighted sum's
    _, parts = multitask_loss(reference, data)
    (0.5 * parts["cls"] + 1.5 * parts["reg"]).backward()
    torch.optim.Adam(reference.parameters(), lr=1e-2).step()
    model_check = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(16,), seed=0)
    opt_check = torch.optim.Adam(model_check.parameters(), lr=1e-2)
    mlh.fit(
        model_check, multitask_loss, loader, opt_check, epochs=1, progress=False,
        weighting=FixedWeighting([0.5, 1.5]),
    )  # fmt: skip
    for p, q in zip(model_check.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_learnable_weighting_gets_its_gradient():
    data, model, _ = _setup()
    weighting = LearnedWeighting(2)
    optimizer = torch.optim.Adam([*model.parameters(), *weighting.parameters()], lr=1e-2)
    history = mlh.fit(
        model, multitask_loss, mlh.BatchLoader(data, 60), optimizer, epochs=2, progress=False,
        weighting=weighting,
    )  # fmt: skip
    assert weighting.log_vars.grad is not None
    assert not torch.equal(weighting.log_vars.detach(), torch.zeros(2))
    assert len(history.weights()["cls"]) == 2


def test_weighting_bad_uses():
    data, model, optimizer = _setup()
    loader = mlh.BatchLoader(data, 60)
    args = (model, multitask_loss, loader, optimizer)
    with pytest.raises(ValueError, match="num_tasks=3 but `loss_fn` returned 2 components"):
        mlh.fit(*args, epochs=1, progress=False, weighting=FixedWeighting([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="either `weighting` or `backward`, not both"):
        mlh.fit(
            *args, epochs=1, progress=False, weighting=FixedWeighting([1.0, 1.0]),
            backward=lambda total, parts: total.backward(),
        )  # fmt: skip
    with pytest.raises(TypeError, match=r"`weighting` must follow the mlh\.Weighting protocol"):
        mlh.fit(*args, epochs=1, progress=False, weighting=torch.ones(2))
    bad = FixedWeighting([1.0, 1.0])
    bad.backward = lambda losses: losses.sum().backward()
    with pytest.raises(ValueError, match=r"must return one weight per task, shape \(2,\)"):
        mlh.fit(*args, epochs=1, progress=False, weighting=bad)


# ---------------------------------------------------------------- seeds and devices
def test_seed_makes_dropout_independent_of_the_global_generator():
    data = mlh.make_multitask_data(120, n_features=4, seed=0)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(16,), dropout=0.5, seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        state = torch.get_rng_state()
        history = mlh.fit(
            model, multitask_loss, mlh.BatchLoader(data, 40, seed=0), optimizer, epochs=2,
            progress=False, seed=7,
        )  # fmt: skip
        assert torch.equal(torch.get_rng_state(), state)  # the caller's state is left alone
        runs.append(history.steps())
    assert runs[0] == runs[1]


def test_seed_restores_the_mps_generator(monkeypatch):
    # No MPS here: the saved state is what the fake generator holds, and it must come back.
    from multiloss_helpers import train

    held = {"state": torch.tensor([1, 2, 3], dtype=torch.uint8)}
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: held["state"].clone())
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: held.update(state=state))
    before = torch.get_rng_state()
    with train._seeded(5, torch.device("mps")) as reseed:
        reseed(0)
        held["state"] = torch.tensor([9, 9, 9], dtype=torch.uint8)  # what seeding did
    assert held["state"].tolist() == [1, 2, 3]
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scheduler": 3}, TypeError, "`scheduler` must have a step"),
        ({"check_finite": "never"}, ValueError, "`check_finite` must be one of"),
        ({"seed": -1}, ValueError, "`seed` must be >= 0"),
        ({"progress": 1}, TypeError, "`progress` must be a bool"),
    ],
)
def test_fit_more_bad_arguments(kwargs, error, match):
    data, model, optimizer = _setup()
    with pytest.raises(error, match=match):
        mlh.fit(model, multitask_loss, mlh.BatchLoader(data, 60), optimizer, epochs=1, **kwargs)


def test_fit_on_every_device(device):
    data, model, _ = _setup()
    model = model.to(device)
    data = {k: v.to(device) for k, v in data.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = mlh.fit(
        model, multitask_loss, mlh.BatchLoader(data, 60), optimizer, epochs=2,
        val_loader=mlh.BatchLoader(data, 120), progress=False, weighting=FixedWeighting([1.0, 1.0]),
    )  # fmt: skip
    assert history.num_epochs == 2 and history.last("total") == history.last("total")


def _fit_once(loader, seed):
    net = mlh.MultiHeadNet(4, {"reg": 1}, hidden=(8,), dropout=0.25, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def loss_fn(model, batch):
        return F.mse_loss(model(batch["x"])["reg"], batch["y_reg"])

    history = mlh.fit(net, loss_fn, loader, opt, epochs=2, progress=False, seed=seed)
    return history.steps()


# Issue 20 regression: fit(seed=) not reproducible with a reused loader; seed range (D4)
def test_fit_with_a_seed_is_reproducible_when_the_same_loader_is_reused():
    data = mlh.make_multitask_data(96, n_features=4, seed=0)
    loader = mlh.BatchLoader(data, 16, seed=3)
    first = _fit_once(loader, seed=0)
    second = _fit_once(loader, seed=0)
    assert first == second
    # and the same as a fresh loader with the same seed: the loader restarts from its seed
    assert _fit_once(mlh.BatchLoader(data, 16, seed=3), seed=0) == first
    assert _fit_once(loader, seed=1) != first  # the seed does choose the dropout draws


# Issue 20 regression: fit(seed=) not reproducible with a reused loader; seed range (D4)
def test_fit_with_a_seed_leaves_the_loader_generator_as_it_was():
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    loader = mlh.BatchLoader(data, 16, seed=3)
    state = loader.generator.get_state()
    _fit_once(loader, seed=0)
    assert torch.equal(loader.generator.get_state(), state)


# Issue 20 regression: fit(seed=) not reproducible with a reused loader; seed range (D4)
def test_fit_with_a_seed_reseeds_a_dataloader_generator_too():
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    dataset = torch.utils.data.StackDataset(x=data["x"], y_reg=data["y_reg"])
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(5)
    )
    assert _fit_once(loader, seed=0) == _fit_once(loader, seed=0)


# Issue 20 regression: fit(seed=) not reproducible with a reused loader; seed range (D4)
@pytest.mark.parametrize("seed", [2**64, -1])
def test_fit_refuses_a_seed_outside_torch_range(seed):
    data = mlh.make_multitask_data(16, n_features=4, seed=0)
    with pytest.raises(ValueError, match="`seed` must be"):
        _fit_once(mlh.BatchLoader(data, 16), seed=seed)


# Issue 20 regression: fit(weighting=) named `losses` instead of the NaN component (D)
@pytest.mark.parametrize("check_finite", ["step", "epoch"])
def test_fit_with_weighting_names_a_nan_component_and_its_step(check_finite):
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    net = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(8,), seed=0)
    calls = []

    def loss_fn(model, batch):
        out = model(batch["x"])
        calls.append(1)
        reg = F.mse_loss(out["reg"], batch["y_reg"])
        if len(calls) == 3:
            reg = reg * float("nan")
        parts = {"cls": F.cross_entropy(out["cls"], batch["y_cls"]), "reg": reg}
        return torch.tensor(1.0), parts  # a finite total that ignores the parts

    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(
        FloatingPointError, match=r"component 'reg' became nan at step 2 of epoch 0"
    ):
        mlh.fit(net, loss_fn, mlh.BatchLoader(data, 16), opt, epochs=1, progress=False,
                weighting=mlh.EqualWeighting(2), check_finite=check_finite)  # fmt: skip
