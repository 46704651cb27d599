import pytest
import torch

from labkit import LabkitError, env, models, train


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
                          scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5))
    per_epoch = train.fit(_model(), tiny_splits, epochs=2, batch_size=64, progress=False, scheduler_step="epoch",
                          scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert per_batch.history["lr"].tolist() == pytest.approx([0.025, 0.0125])
    assert per_epoch.history["lr"].tolist() == pytest.approx([0.025, 0.0125])


def test_amp_bf16_and_clipping_run_on_cpu(tiny_splits):
    result = train.fit(_model(), tiny_splits, epochs=1, batch_size=64, amp=True, clip_grad=1.0,
                       device="cpu", progress=False)
    assert len(result.history) == 1 and result.history["train_loss"].notna().all()


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
    ({"epochs": 1, "amp_dtype": torch.float64}, "amp_dtype"), ({"epochs": 1, "scheduler_step": "step"}, "scheduler_step"),
    ({"epochs": 1, "device": "tpu"}, "Unknown device"),
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
