"""Knowledge distillation: the loss, the student loop, the shipped teacher, the explorer, the exercise checks."""

import time

import pytest
import torch
from torch.nn import functional as F

from labkit import LabkitError, data, env, models, train
from labkit.techniques import distillation as kd
from labkit.ui import distillation as kd_ui


def test_the_step_losses_look_targets_up_by_index():
    logits, soft, y = torch.randn(6, 10), torch.randn(20, 10), torch.randint(0, 10, (20,))
    idx = torch.tensor([3, 0, 19, 7, 7, 12])
    kd_fn = kd.kd_loss_fn(soft, y, 2.0, 0.5)
    assert torch.equal(kd_fn(logits, None, idx), kd.kd_loss(logits, soft[idx], y[idx], 2.0, 0.5))
    assert torch.equal(kd.labels_by_index(y)(logits, None, idx), F.cross_entropy(logits, y[idx]))
    with pytest.raises(LabkitError, match="alpha"):
        kd.kd_loss_fn(soft, y, 2.0, 1.5)


# --- softening and the loss -------------------------------------------------------------------

def test_soften_is_a_distribution_that_flattens_with_T():
    z = torch.tensor([[3.0, 1.0, 0.0, -2.0]])
    probs = {T: kd.soften(z, T) for T in (0.5, 1.0, 2.0, 8.0)}
    assert all(torch.allclose(p.sum(-1), torch.ones(1)) for p in probs.values())
    assert torch.allclose(probs[1.0], F.softmax(z, -1))
    entropy = [kd.entropy_bits(probs[T]).item() for T in (0.5, 1.0, 2.0, 8.0)]
    assert entropy == sorted(entropy) and entropy[-1] < 2.0 + 1e-6  # never above log2(4) = 2 bits


def test_kd_loss_reduces_to_its_two_terms():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    T = 3.0
    assert torch.allclose(kd.kd_loss(s, t, y, T, 0.0), F.cross_entropy(s, y))
    p_t = F.softmax(t / T, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, -1))).sum(-1).mean()
    assert torch.allclose(kd.kd_loss(s, t, y, T, 1.0), T * T * kl, atol=1e-6)
    assert torch.allclose(kd.kd_loss(s, t, y, T, 0.25), 0.25 * T * T * kl + 0.75 * F.cross_entropy(s, y), atol=1e-6)
    assert kd.kd_loss(t, t, y, T, 1.0).abs() < 1e-6  # a student equal to its teacher pays nothing


def test_kd_loss_ignores_missing_labels():
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([2, -1, -1, 0, -1, 3])
    labelled = y >= 0
    expected = 0.5 * kd.kd_loss(s, t, y, 2.0, 1.0) + 0.5 * F.cross_entropy(s[labelled], y[labelled])
    assert torch.allclose(kd.kd_loss(s, t, y, 2.0, 0.5), expected)
    none = torch.full((6,), -1)
    assert torch.isfinite(kd.kd_loss(s, t, none, 2.0, 0.5))  # a batch with no label at all still trains


@pytest.mark.parametrize("T, alpha, message", [(0.0, 0.5, "greater than 0"), (-1.0, 0.5, "greater than 0"),
                                                (2.0, 1.5, "between 0"), (2.0, -0.1, "between 0")])
def test_bad_settings_raise_one_clear_line(T, alpha, message):
    with pytest.raises(LabkitError, match=message):
        kd.kd_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), T, alpha)
    with pytest.raises(LabkitError, match=message):
        kd.check_settings(T, alpha)


def test_hide_labels_keeps_a_stratified_subset(tiny_splits):
    y = tiny_splits.y_train
    hidden = kd.hide_labels(y, 64)
    kept = hidden >= 0
    assert kept.sum() == 64 and torch.equal(hidden[kept], y[kept])
    assert torch.bincount(hidden[kept], minlength=4).tolist() == [16, 16, 16, 16]
    with pytest.raises(LabkitError, match="labelled"):
        kd.hide_labels(y, 0)


# --- the student loop -------------------------------------------------------------------------

def _teacher_for(splits):
    """A quickly trained 4-class MLP standing in for the CNN teacher."""
    env.seed_everything(0)
    teacher = models.MLP(width=32, num_classes=4)
    train.fit(teacher, splits, epochs=3, batch_size=32, progress=False, device="cpu")
    return teacher.eval()


def test_scratch_and_distilled_students_learn(tiny_splits):
    cfg = kd.DistillConfig(steps=60, batch_size=32, seeds=(0,))
    teacher = _teacher_for(tiny_splits)
    soft = kd.teacher_logits(teacher, tiny_splits.X_train)
    for targets in (None, soft):
        env.seed_everything(0)
        student = models.MLP(width=16, num_classes=4)
        kd.train_student(student, tiny_splits.X_train, tiny_splits.y_train, cfg, seed=0, soft_targets=targets)
        assert not student.training
        assert train.evaluate(student, tiny_splits.X_test, tiny_splits.y_test)[1] > 0.8


def test_alpha_zero_distillation_is_training_from_scratch(tiny_splits):
    """With alpha = 0 the teacher's term has no weight: both loops must end with the same weights."""
    cfg = kd.DistillConfig(steps=20, batch_size=32, alpha=0.0)
    weights = []
    for targets in (None, torch.randn(len(tiny_splits.y_train), 4)):
        env.seed_everything(0)
        student = models.MLP(width=16, num_classes=4)
        kd.train_student(student, tiny_splits.X_train, tiny_splits.y_train, cfg, seed=0, soft_targets=targets)
        weights.append(torch.nn.utils.parameters_to_vector(student.parameters()).detach())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_students_without_labels_follow_the_teacher(tiny_splits):
    """Only 16 labels: the distilled student (teacher's targets on all 256) follows the teacher more closely."""
    cfg = kd.DistillConfig(steps=80, batch_size=32, seeds=(0,), alpha=0.9, temperature=2.0)
    teacher = _teacher_for(tiny_splits)
    soft = kd.teacher_logits(teacher, tiny_splits.X_train)
    y = kd.hide_labels(tiny_splits.y_train, 16)
    splits = data.Splits(tiny_splits.X_train, tiny_splits.y_train, tiny_splits.X_test, tiny_splits.y_test)
    out = kd.compare_students(splits, soft, y, cfg, kd.teacher_logits(teacher, splits.X_test))
    assert out["agree_distilled"][0] >= out["agree_scratch"][0]
    assert out["distilled"][0] >= out["scratch"][0]
    pseudo = kd.hard_pseudo_label_students(splits, soft, y, cfg)
    assert len(pseudo) == 1 and 0 <= pseudo[0] <= 1


def test_student_loop_refuses_mismatched_inputs(tiny_splits):
    cfg = kd.DistillConfig(steps=2)
    student = models.MLP(num_classes=4)
    with pytest.raises(LabkitError, match="rows but X has"):
        kd.train_student(student, tiny_splits.X_train, tiny_splits.y_train, cfg, seed=0,
                         soft_targets=torch.randn(3, 4))
    with pytest.raises(LabkitError, match="needs a label"):
        kd.train_student(student, tiny_splits.X_train, kd.hide_labels(tiny_splits.y_train, 8), cfg, seed=0)


def test_check_distilled_raises_when_the_teacher_did_not_reach_the_student():
    soft = torch.randn(32, 10)
    kd.check_distilled(0.9, 0.8, soft, 2.0)
    with pytest.raises(LabkitError, match="did not reach the student"):
        kd.check_distilled(0.8, 0.8, soft, 2.0)
    with pytest.raises(LabkitError, match="one-hot"):
        kd.check_distilled(0.9, 0.8, 100 * torch.eye(10)[torch.arange(32) % 10], 1.0)


# --- the teacher ------------------------------------------------------------------------------

def test_teacher_shape_and_size():
    teacher = kd.Teacher()
    assert teacher(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert models.count_params(teacher) > 4 * models.count_params(models.MLP())


def test_macs_per_image_counted_by_hand():
    assert kd.macs_per_image(models.MLP()) == 784 * 64 + 64 * 10
    convs = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 128 * 64 * 9
    assert kd.macs_per_image(kd.Teacher()) == convs + 1152 * 256 + 256 * 10


def test_missing_or_changed_teacher_weights_say_how_to_rebuild(tmp_path):
    with pytest.raises(LabkitError, match="missing: rebuild it with `labkit pretrain distillation`"):
        kd.load_teacher(tmp_path / "nowhere.pt")
    changed = tmp_path / "distillation_teacher.pt"
    changed.write_bytes(b"not the shipped weights")
    with pytest.raises(LabkitError, match="SHA256SUMS: rebuild it with `labkit pretrain distillation`"):
        kd.load_teacher(changed)


def test_shipped_teacher_is_verified_and_accurate():
    teacher = kd.load_teacher()
    assert not teacher.training
    splits = data.load(n_train=10, n_test=500)
    assert train.evaluate(teacher, splits.X_test, splits.y_test)[1] > 0.85


def test_latency_and_headline_smoke_returns_the_keys():
    start = time.perf_counter()
    report = kd.headline("smoke")
    assert time.perf_counter() - start < 120
    assert set(report.headline) == {"kd_gain_pt", "student_speedup", "size_ratio"}
    assert report.headline["student_speedup"] > 1 and report.headline["size_ratio"] > 4
    assert report.card.value("teacher", "latency_ms") > report.card.value("teacher", "latency_b1_ms")  # 64 vs 1
    assert "teacher" in report.card.variants and report.config["temperature"] == 2.0
    for column in ("latency_ms", "latency_b1_ms", "size_mb", "params", "accuracy"):
        assert report.card.value("teacher", column) > 0


# --- the explorer -----------------------------------------------------------------------------

def test_temperature_explorer_redraws_and_explains_bad_values():
    logits = torch.tensor([[4.0, 1.0, 0.0, 0, 0, 0, 0, 0, 0, 0], [0.0, 0, 5, 2, 0, 0, 0, 0, 0, 0]])
    images = torch.zeros(2, 1, 28, 28)
    explorer = kd_ui.TemperatureExplorer(images, logits, torch.tensor([0, 2]), data.CLASS_NAMES, temperature=2.0)
    assert bytes(explorer.picture.value).startswith(b"\x89PNG")
    assert "entropy" in explorer.summary and "T-shirt/top" in explorer.summary
    picture = explorer.picture.value
    explorer.slider.value = 0.0
    assert "must be greater than 0" in explorer.summary and explorer.picture.value == picture
    explorer.slider.value = 4.0
    assert "T = 4" in explorer.summary and explorer.picture.value != picture


# --- the exercise checks ----------------------------------------------------------------------


def _soft_labels(teacher, X, T):
    teacher.eval()
    with torch.no_grad():
        return F.softmax(teacher(X) / T, -1)


# --- the optional chain ------------------------------------------------------------------------

def test_pareto_front_keeps_the_undominated():
    from labkit.results import ResultCard
    card = ResultCard([{"variant": "a", "accuracy": 0.9, "latency_ms": 10.0},
                       {"variant": "b", "accuracy": 0.8, "latency_ms": 1.0},
                       {"variant": "c", "accuracy": 0.8, "latency_ms": 5.0},   # b is as good and cheaper
                       {"variant": "d", "accuracy": 0.95, "latency_ms": 20.0}])
    assert kd.pareto_front(card) == ["a", "b", "d"]


def test_chain_prunes_quantizes_and_shrinks(tiny_splits, monkeypatch):
    import dataclasses
    cfg = dataclasses.replace(kd.config_for("smoke"), steps=40, batch_size=64, student_width=32, latency_rounds=1)
    torch.manual_seed(0)
    teacher = models.MLP(width=128, num_classes=4)
    train.fit(teacher, tiny_splits, epochs=3, lr=0.05, batch_size=64, device="cpu", progress=False)
    soft = kd.teacher_logits(teacher.eval(), tiny_splits.X_train)
    mlp = models.MLP
    monkeypatch.setattr(kd.models, "MLP", lambda width: mlp(width=width, num_classes=4))  # the tiny task: 4 classes
    card = kd.chain(teacher, tiny_splits.X_train, tiny_splits.y_train, soft, tiny_splits, cfg)
    assert card.variants == ["teacher", "student, distilled", "+ pruned 70%", "+ int8"]
    rows = {r["variant"]: r for r in card.rows}
    assert rows["+ pruned 70%"]["nonzero_weights"] < 0.35 * rows["student, distilled"]["nonzero_weights"]
    assert rows["+ int8"]["size_mb"] < rows["+ pruned 70%"]["size_mb"] < rows["student, distilled"]["size_mb"]
    assert rows["+ int8"]["accuracy"] > 0.8 and all(r["latency_ms"] > 0 for r in card.rows)
    assert "+ int8" in kd.pareto_front(card, "size_mb")
    assert kd_ui.plot_pareto(card).axes[0].get_xscale() == "log"
