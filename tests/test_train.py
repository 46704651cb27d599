import pytest
import torch

from labkit import LabkitError, data, env, models, train


def _model():
    env.seed_everything(0)
    return models.MLP(width=32, num_classes=4)


def test_fit_learns_and_records_history(tiny_splits):
    result = train.fit(_model(), tiny_splits, epochs=3, lr=0.05, batch_size=32, progress=False, target_acc=0.9)
    hist = result.history
    assert list(hist["epoch"]) == [1, 2, 3]
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert result.final_acc > 0.9
    assert result.epochs_to_target is not None and result.time_to_target_s <= result.train_time_s
    assert result.images_seen == 3 * 256 and not result.interrupted


def test_same_seed_same_weights(tiny_splits):
    a, b = _model(), _model()
    train.fit(a, tiny_splits, epochs=1, batch_size=32, progress=False)
    train.fit(b, tiny_splits, epochs=1, batch_size=32, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_accumulation_matches_a_large_batch(tiny_splits):
    """Two batches of 32 with accumulation take the same step as one batch of 64 (plain SGD)."""
    big, acc = _model(), _model()
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    train.fit(big, tiny_splits, epochs=1, batch_size=64, opt=sgd(big), progress=False)
    train.fit(acc, tiny_splits, epochs=1, batch_size=32, accum_steps=2, opt=sgd(acc), progress=False)
    for pa, pb in zip(big.parameters(), acc.parameters()):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_scheduler_steps_per_batch_or_per_epoch(tiny_splits):
    per_batch = train.fit(_model(), tiny_splits, epochs=2, batch_size=64, progress=False,
                          scheduler=lambda opt, total: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5))
    per_epoch = train.fit(_model(), tiny_splits, epochs=2, batch_size=64, progress=False, scheduler_step="epoch",
                          scheduler=lambda opt, total: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert per_batch.history["lr"].tolist() == pytest.approx([0.025, 0.0125])
    assert per_epoch.history["lr"].tolist() == pytest.approx([0.025, 0.0125])


@pytest.mark.parametrize("batch_size, accum_steps, scheduler_step, expected", [
    (64, 1, "batch", 3 * 4), (48, 1, "batch", 3 * 6), (64, 3, "batch", 3 * 2), (64, 1, "epoch", 3)])
def test_the_scheduler_is_planned_over_every_optimizer_step(tiny_splits, batch_size, accum_steps, scheduler_step,
                                                            expected):
    """256 images: the factory gets the number of scheduler.step() calls, and the schedule ends exactly there."""
    planned = []

    def linear_to_zero(opt, total_steps):
        planned.append(total_steps)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / total_steps)

    result = train.fit(_model(), tiny_splits, epochs=3, batch_size=batch_size, accum_steps=accum_steps,
                       scheduler=linear_to_zero, scheduler_step=scheduler_step, progress=False)
    assert planned == [expected]
    assert result.history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-12)
    assert result.history["lr"].iloc[-2] > 0


def test_bf16_and_clipping_run_on_cpu(tiny_splits):
    result = train.fit(_model(), tiny_splits, epochs=1, batch_size=64, precision="bf16", clip_grad=1.0,
                       device="cpu", progress=False)
    assert len(result.history) == 1 and result.history["train_loss"].notna().all()


def test_one_precision_switch_picks_the_dtype():
    assert train.mixed_dtype("cuda") == torch.float16 and train.mixed_dtype("cpu") == torch.bfloat16
    assert train.precision_dtype("auto", "cpu") == torch.bfloat16
    assert train.precision_dtype("auto", "cuda") == torch.float16
    assert [train.precision_dtype(p, "cpu") for p in ("fp32", "fp16", "bf16")] == [
        torch.float32, torch.float16, torch.bfloat16]
    assert train.make_scaler(torch.float16, "cpu").is_enabled()
    assert not train.make_scaler(torch.bfloat16, "cpu").is_enabled()


def test_train_step_computes_in_the_precision_it_is_given():
    env.seed_everything(0)
    model, X, y = models.MLP(width=8, num_classes=4), torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    logits, _ = train.train_step(model, opt, X, y, dtype=torch.bfloat16)
    assert logits.dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32
    logits, _ = train.train_step(model, opt, X, y)
    assert logits.dtype == torch.float32


def test_the_step_waits_for_the_end_of_its_group():
    env.seed_everything(0)
    model, X, y = models.MLP(width=8, num_classes=4), torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    train.train_step(model, opt, X, y, group_size=2, end_of_group=False)
    assert torch.equal(torch.nn.utils.parameters_to_vector(model.parameters()), before)
    assert all(p.grad is not None for p in model.parameters())
    train.train_step(model, opt, X, y, group_size=2, end_of_group=True)
    assert not torch.equal(torch.nn.utils.parameters_to_vector(model.parameters()), before)
    assert all(p.grad is None for p in model.parameters())


def test_accumulation_groups_hold_what_is_left_at_the_end_of_an_epoch():
    assert [train.accumulation_group(i, 5, 2) for i in range(5)] == [
        (2, False), (2, True), (2, False), (2, True), (1, True)]
    assert [train.accumulation_group(i, 3, 1) for i in range(3)] == [(1, True)] * 3
    assert [train.accumulation_group(i, 2, 4) for i in range(2)] == [(2, False), (2, True)]


def test_a_partial_last_group_steps_with_its_own_mean_gradient():
    """5 batches with accum_steps=2: groups of 2, 2 and 1 batches, each step the mean gradient of its group.
    (Dividing the last group's gradient by 2, as if it were full, halves the last step.)"""
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 1, 28, 28, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(5)]
    splits = data.Splits(batches[0][0], batches[0][1], batches[0][0], batches[0][1], classes=("a", "b", "c", "d"))
    lr = 0.5
    fitted, reference = _model(), _model()
    train.fit(fitted, splits, epochs=1, opt=torch.optim.SGD(fitted.parameters(), lr=lr), accum_steps=2,
              train_loader=batches, device="cpu", progress=False)
    for group in (batches[0:2], batches[2:4], batches[4:5]):  # by hand: w -= lr × the group's mean gradient
        grads = [torch.autograd.grad(torch.nn.functional.cross_entropy(reference(xb), yb),
                                     list(reference.parameters())) for xb, yb in group]
        with torch.no_grad():
            for i, p in enumerate(reference.parameters()):
                p -= lr * sum(gr[i] for gr in grads) / len(group)
    for pf, pr in zip(fitted.parameters(), reference.parameters()):
        assert torch.allclose(pf, pr, atol=1e-6)


def test_callback_stop_keeps_the_history(tiny_splits):
    class StopAfterOneEpoch:
        def on_epoch_end(self, state):
            return True

    result = train.fit(_model(), tiny_splits, epochs=5, batch_size=64, callbacks=[StopAfterOneEpoch()], progress=False)
    assert len(result.history) == 1


def test_ctrl_c_ends_cleanly_and_keeps_finished_epochs(tiny_splits):
    class CtrlCInEpochTwo:
        def on_batch_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt

    result = train.fit(_model(), tiny_splits, epochs=5, batch_size=64, callbacks=[CtrlCInEpochTwo()], progress=False)
    assert result.interrupted and len(result.history) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": -1}, "epochs"), ({"epochs": 1, "lr": 0}, "lr="), ({"epochs": 1, "accum_steps": 0}, "accum_steps"),
    ({"epochs": 1, "precision": "fp64"}, "precision"), ({"epochs": 1, "scheduler_step": "step"}, "scheduler_step"),
    ({"epochs": 1, "target_acc": 85}, "fraction"), ({"epochs": 1, "device": "tpu"}, "Unknown device"),
])
def test_bad_arguments_say_what_to_do(tiny_splits, kwargs, message):
    with pytest.raises(LabkitError, match=message):
        train.fit(_model(), tiny_splits, progress=False, **kwargs)


def test_wrong_shapes_are_reported(tiny_splits):
    with pytest.raises(LabkitError, match="must match"):
        train.evaluate(_model(), tiny_splits.X_test, tiny_splits.y_test[:10])


def test_evaluate_a_model_without_parameters(tiny_splits):
    loss, acc = train.evaluate(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity()), tiny_splits.X_test[:, :, :1, :4],
                               tiny_splits.y_test)
    assert 0 <= acc <= 1 and loss > 0
