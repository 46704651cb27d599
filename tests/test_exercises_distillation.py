"""The exercise catalogue of notebook 09_distillation (labkit.exercises.distillation): per exercise, the answer
key passes, the shipped stub is "not attempted", an answer that forgets `return` is told so, and each mistake
learners really make (written as the code they write) gets a Hint that names it. Plus: answers written other
ways pass, no constant passes, unlabelled images are named when they crash the cross-entropy, the solution
only on request, and the notebook shows no exercise's answer before the exercise."""

import inspect
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from exercise_catalogue import CatalogueTests
from labkit import exercises
from labkit.exercises import Hint, NotAttempted
from labkit.exercises import distillation as check
from labkit.exercises.answers import distillation as key

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_distillation.ipynb"


# ---------------------------------------------------------------- exercise 1: entropy at T, in bits

def entropy_stub(logits, T):
    # YOUR CODE
    ...


def entropy_forgot_return(logits, T):
    probs = F.softmax(logits / T, dim=-1)
    -(probs * torch.log2(probs)).sum(dim=-1)


def entropy_nats(logits, T):
    probs = F.softmax(logits / T, dim=-1)
    return -(probs * torch.log(probs)).sum(dim=-1)


def entropy_no_temperature(logits, T):
    probs = F.softmax(logits, dim=-1)
    return -(probs * torch.log2(probs)).sum(dim=-1)


def entropy_times_t(logits, T):
    probs = F.softmax(logits * T, dim=-1)
    return -(probs * torch.log2(probs)).sum(dim=-1)


def entropy_softmax_dim0(logits, T):
    probs = F.softmax(logits / T, dim=0)
    return -(probs * torch.log2(probs)).sum(dim=-1)


def entropy_no_minus(logits, T):
    probs = F.softmax(logits / T, dim=-1)
    return (probs * torch.log2(probs)).sum(dim=-1)


def entropy_summed_over_batch(logits, T):
    probs = F.softmax(logits / T, dim=-1)
    return -(probs * torch.log2(probs)).sum()


def entropy_returns_probabilities(logits, T):
    return F.softmax(logits / T, dim=-1)


def entropy_hard_coded(logits, T):
    return torch.tensor([1.5, 1.2])


def entropy_other_way(logits, T):
    log_p = F.log_softmax(logits / T, dim=1)
    return -(log_p.exp() * log_p).sum(1) / torch.log(torch.tensor(2.0))


# ---------------------------------------------------------------- exercise 2: the loss from soft labels

def kd_stub(student_logits, soft_targets, y, T, alpha):
    # YOUR CODE
    ...


def kd_forgot_return(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean") * T * T
    hard = F.cross_entropy(student_logits[y >= 0], y[y >= 0])
    alpha * soft + (1 - alpha) * hard


def kd_softens_targets_again(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), F.softmax(soft_targets / T, -1),
                    reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_targets_as_logits(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(soft_targets / T, -1),
                    reduction="batchmean", log_target=True) * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_no_t_squared(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_alpha_swapped(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean") * T * T
    return (1 - alpha) * soft + alpha * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_reverse_kl(student_logits, soft_targets, y, T, alpha):
    p_s = F.softmax(student_logits / T, -1)
    soft = (p_s * (p_s.log() - soft_targets.log())).sum(-1).mean() * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_kl_summed(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="sum") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_student_not_softened(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits, -1), soft_targets, reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0], y[y >= 0])


def kd_cross_entropy_at_t(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits[y >= 0] / T, y[y >= 0])


def kd_cross_entropy_over_all_images(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean") * T * T
    labelled = y >= 0
    hard = F.cross_entropy(student_logits[labelled], y[labelled], reduction="sum") / len(y)
    return alpha * soft + (1 - alpha) * hard


def kd_unlabelled_in_cross_entropy(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets, reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, y)


def kd_hard_coded(student_logits, soft_targets, y, T, alpha):
    return torch.tensor(1.2345)


def kd_ignore_index(student_logits, soft_targets, y, T, alpha):
    soft = F.kl_div(F.log_softmax(student_logits / T, -1), soft_targets.log(), reduction="batchmean",
                    log_target=True) * T ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, y, ignore_index=-1)


# ---------------------------------------------------------------- exercise 3: the share of errors removed

def fewer_stub(scratch_acc, distilled_acc):
    # YOUR CODE
    ...


def fewer_forgot_return(scratch_acc, distilled_acc):
    100 * (distilled_acc - scratch_acc) / (1 - scratch_acc)


def fewer_points(scratch_acc, distilled_acc):
    return 100 * (distilled_acc - scratch_acc)


def fewer_fraction(scratch_acc, distilled_acc):
    return (distilled_acc - scratch_acc) / (1 - scratch_acc)


def fewer_over_accuracy(scratch_acc, distilled_acc):
    return 100 * (distilled_acc - scratch_acc) / scratch_acc


def fewer_over_distilled_errors(scratch_acc, distilled_acc):
    return 100 * (distilled_acc - scratch_acc) / (1 - distilled_acc)


def fewer_remaining(scratch_acc, distilled_acc):
    return 100 * (1 - distilled_acc) / (1 - scratch_acc)


def fewer_clipped(scratch_acc, distilled_acc):
    return max(0.0, 100 * (distilled_acc - scratch_acc) / (1 - scratch_acc))


def fewer_hard_coded(scratch_acc, distilled_acc):
    return 25.0


# ---------------------------------------------------------------- exercise 4: the teacher's soft labels

def soft_stub(teacher, X, T):
    # YOUR CODE
    ...


def soft_forgot_return(teacher, X, T):
    teacher.eval()
    with torch.no_grad():
        F.softmax(teacher(X) / T, dim=-1)


def soft_train_mode(teacher, X, T):
    with torch.no_grad():
        return F.softmax(teacher(X) / T, dim=-1)


def soft_with_gradient_history(teacher, X, T):
    teacher.eval()
    return F.softmax(teacher(X) / T, dim=-1)


def soft_logits(teacher, X, T):
    teacher.eval()
    with torch.no_grad():
        return teacher(X) / T


def soft_no_temperature(teacher, X, T):
    teacher.eval()
    with torch.no_grad():
        return F.softmax(teacher(X), dim=-1)


def soft_dim0(teacher, X, T):
    teacher.eval()
    with torch.no_grad():
        return F.softmax(teacher(X) / T, dim=0)


def soft_eval_after(teacher, X, T):
    with torch.no_grad():
        probs = F.softmax(teacher(X) / T, dim=-1)
    teacher.eval()
    return probs


def soft_detached(teacher, X, T):
    return F.softmax(teacher.eval()(X) / T, dim=-1).detach()


CATALOGUE = {
    "softened": (check.softened, key.soft_entropy, entropy_stub, entropy_forgot_return, {
        "nats": (entropy_nats, "nats"),
        "temperature ignored": (entropy_no_temperature, "ignore the temperature"),
        "multiplied by T": (entropy_times_t, "sharpens"),
        "softmax over the batch": (entropy_softmax_dim0, "ROW"),
        "no minus sign": (entropy_no_minus, "sign"),
        "one number for the batch": (entropy_summed_over_batch, "one entropy per image"),
        "probabilities, not entropy": (entropy_returns_probabilities, "like the probabilities"),
        "hard-coded": (entropy_hard_coded, "expected"),
    }),
    "distillation_loss": (check.distillation_loss, key.kd_soft, kd_stub, kd_forgot_return, {
        "targets softened again": (kd_softens_targets_again, "already probabilities"),
        "targets treated as logits": (kd_targets_as_logits, "already probabilities"),
        "no T²": (kd_no_t_squared, "T²"),
        "alpha swapped": (kd_alpha_swapped, "alpha weighs"),
        "reverse KL": (kd_reverse_kl, "teacher to the student"),
        "KL summed": (kd_kl_summed, "batchmean"),
        "student not softened": (kd_student_not_softened, "at T too"),
        "cross-entropy at T": (kd_cross_entropy_at_t, "T = 1"),
        "cross-entropy over all images": (kd_cross_entropy_over_all_images, "labelled images only"),
        "unlabelled in the cross-entropy": (kd_unlabelled_in_cross_entropy, "no label"),
        "hard-coded": (kd_hard_coded, "expected"),
    }),
    "fewer_errors": (check.fewer_errors, key.fewer_errors_pct, fewer_stub, fewer_forgot_return, {
        "accuracy points": (fewer_points, "gain in points"),
        "fraction": (fewer_fraction, "percent"),
        "over the accuracy": (fewer_over_accuracy, "scratch accuracy"),
        "over the distilled errors": (fewer_over_distilled_errors, "distilled student's errors"),
        "the errors that remain": (fewer_remaining, "REMAINS"),
        "clipped at zero": (fewer_clipped, "negative"),
        "hard-coded": (fewer_hard_coded, "expected"),
    }),
    "soft_labels": (check.soft_labels, key.make_soft_labels, soft_stub, soft_forgot_return, {
        "training mode": (soft_train_mode, "eval"),
        "eval only after the forward pass": (soft_eval_after, "eval"),
        "gradient history": (soft_with_gradient_history, "no_grad"),
        "logits": (soft_logits, "logits"),
        "T = 1": (soft_no_temperature, "T=1"),
        "softmax over the batch": (soft_dim0, "ROW"),
    }),
}


class TestCatalogue(CatalogueTests):
    CATALOGUE = CATALOGUE


@pytest.mark.parametrize("answer, exercise", [(entropy_other_way, check.softened),
                                              (kd_ignore_index, check.distillation_loss),
                                              (soft_detached, check.soft_labels)])
def test_answers_written_other_ways_pass(answer, exercise):
    assert "passed" in exercise(answer)


@pytest.mark.parametrize("constant", [0.0, 25.0, 30.0, 1.0])
def test_no_constant_passes_the_number_check(constant):
    with pytest.raises(Hint):
        check.fewer_errors(lambda scratch_acc, distilled_acc: constant)


def test_every_case_differs_for_each_catalogued_number_mistake():
    """The cases must tell the mistakes apart: no two recognised answers coincide on any case."""
    for a, b in check.ERROR_CASES:
        values = [100 * (b - a) / (1 - a), 100 * (b - a), (b - a) / (1 - a), 100 * (b - a) / a,
                  100 * (b - a) / b, 100 * (b - a) / (1 - b), 100 * (1 - b) / (1 - a)]
        assert len({round(v, 6) for v in values}) == len(values), (a, b)
    assert any(b < a for a, b in check.ERROR_CASES)  # a case where the answer is negative


def test_the_teacher_is_left_in_training_mode_before_each_call():
    seen = []

    def spy(teacher, X, T):
        seen.append(teacher.training)
        return key.make_soft_labels(teacher, X, T)

    check.soft_labels(spy)
    assert seen and all(seen)


def test_a_learner_error_is_reported_in_one_line():
    with pytest.raises(Hint, match="your code raised ZeroDivisionError"):
        check.fewer_errors(lambda scratch_acc, distilled_acc: 1 / 0)


def test_under_nbgrader_an_untouched_exercise_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(NotAttempted):
        check.softened(entropy_stub)


def test_the_solution_only_after_an_attempt():
    exercises._attempted.discard(("distillation", "distillation_loss"))
    check.distillation_loss(kd_stub)
    assert "try it first" in check.solution("distillation_loss")
    with pytest.raises(Hint):
        check.distillation_loss(kd_no_t_squared)
    assert "def kd_soft(student_logits, soft_targets, y, T, alpha):" in check.solution("distillation_loss")


def test_no_exercise_answer_is_shown_before_its_exercise():
    """The notebook shows `soften` and `kd_loss`; the exercises are variants of them (entropy in bits, the loss
    from stored probabilities with unlabelled images), and the functions that answer exercises 3 and 4 as they
    stand (`fewer_errors_pct`, `teacher_logits`) are called but never shown."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    shown = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for name in ("fewer_errors_pct", "teacher_logits", "entropy_bits"):
        assert f"getsource(kd.{name})" not in shown, name
    from labkit.techniques import distillation as kd
    shown_sources = [inspect.getsource(getattr(kd, n)) for n in re.findall(r"getsource\(kd\.(\w+)\)", shown)]
    for forbidden in ("log2", "fewer_errors", "no_grad", "teacher.eval"):
        assert not any(forbidden in s for s in shown_sources), forbidden
