import os

import torch

from labkit import bench, doctor


def test_report_states_this_machine():
    info = doctor.report()
    assert info["cores"] == os.cpu_count() and info["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["peak_gflops_cpu_fp32"] == round(bench.cpu_peak_gflops(), 1) > 0
    assert info["gpu"] is None or info["peak_gflops_gpu_fp32"] > 0
    lines = doctor.report_text(info).splitlines()
    assert len(lines) == len(info) - 1 + len(info["data"]) and lines[0].split()[0] == "cpu"
    assert info["data"][-1].endswith("shipped files match data/SHA256SUMS")
    assert [line.split()[0] for line in lines].count("data") == 1  # one key, one line per file problem below it
