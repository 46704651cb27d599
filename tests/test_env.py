import pytest
import torch

from labkit import LabkitError, env


def test_mode_defaults_to_full_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv("LABKIT_MODE", raising=False)
    assert env.mode() == "full"
    monkeypatch.setenv("LABKIT_MODE", "smoke")
    assert env.mode() == "smoke"
    assert env.pick(smoke=1, full=10) == 1


def test_bad_mode_says_what_to_do(monkeypatch):
    monkeypatch.setenv("LABKIT_MODE", "fast")
    with pytest.raises(LabkitError, match="'smoke' or 'full'"):
        env.mode()
    with pytest.raises(LabkitError, match="'smoke' or 'full'"):
        env.check_mode("quick")


def test_device_auto_is_cpu_here_and_unknown_device_is_refused():
    assert env.device("auto").type in ("cpu", "cuda", "mps")
    assert env.device("cpu") == torch.device("cpu")
    with pytest.raises(LabkitError, match="Unknown device"):
        env.device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_a_one_line_error():
    with pytest.raises(LabkitError, match="use device='cpu'"):
        env.device("cuda")


def test_seed_everything_repeats_random_numbers():
    env.seed_everything(3)
    a = torch.randn(5)
    env.seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_set_threads_refuses_zero():
    with pytest.raises(LabkitError):
        env.set_threads(0)
    assert env.set_threads(None) == torch.get_num_threads()


def test_cpu_threads_restores_the_count():
    import torch

    before = torch.get_num_threads()
    with env.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
