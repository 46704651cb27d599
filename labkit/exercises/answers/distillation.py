"""Reference answers for notebooks/09_distillation.ipynb (the notebook imports `torch` and, in the
exercise cells, `torch.nn.functional as F`)."""

import torch
import torch.nn.functional as F


def soft_entropy(logits, T):
    probs = F.softmax(logits / T, dim=-1)  # one row of probabilities per image, softened at T
    return -(probs * torch.log2(probs)).sum(dim=-1)  # in bits: log base 2; one entropy per image


def kd_soft(student_logits, soft_targets, y, T, alpha):
    # soft_targets are the teacher's probabilities at T already: soften only the student
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    soft = F.kl_div(log_p_student, soft_targets, reduction="batchmean") * T * T  # KL(teacher ‖ student)
    labelled = y >= 0  # y = -1: no label, this image learns from the teacher only
    hard = F.cross_entropy(student_logits[labelled], y[labelled])  # averaged over the labelled images
    return alpha * soft + (1 - alpha) * hard


def fewer_errors_pct(scratch_acc, distilled_acc):
    scratch_errors = 1 - scratch_acc  # the share of images the scratch student gets wrong
    return 100 * (distilled_acc - scratch_acc) / scratch_errors  # the part of those errors that is gone


def make_soft_labels(teacher, X, T):
    teacher.eval()  # batch norm uses its stored statistics, dropout keeps every unit
    with torch.no_grad():  # the teacher does not learn: no gradient history
        return F.softmax(teacher(X) / T, dim=-1)


KEY = {"softened": soft_entropy, "distillation_loss": kd_soft, "fewer_errors": fewer_errors_pct,
       "soft_labels": make_soft_labels}
