import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def labkit(*args, env_extra=None):
    env = {**os.environ, "LABKIT_MODE": "smoke", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)


def test_doctor_reports_the_machine():
    out = labkit("doctor", "--json")
    assert out.returncode == 0
    info = json.loads(out.stdout)
    assert info["torch"].startswith("2.13.0") and info["peak_gflops_cpu_fp32"] > 0


def test_bench_overhead_json(tmp_path):
    out = labkit("bench", "overhead", "--mode", "smoke", "--json", env_extra={"LABKIT_RESULTS_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["name"] == "overhead" and payload["mode"] == "smoke"
    assert set(payload["headline"]) >= {"fit_overhead_pct", "timer_error_pct"}
    assert payload["headline"]["max_weight_diff"] == 0
    assert len(payload["rows"]) == 5 and payload["machine"]["cpu"]
    assert (tmp_path / "results.csv").exists()


def test_errors_are_one_line_with_exit_code_2():
    out = labkit("bench", "no_such_bench")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "choose one of" in out.stderr
    out = labkit("doctor", env_extra={"LABKIT_MODE": "turbo"})
    assert out.returncode == 2 and "'smoke' or 'full'" in out.stderr and "Traceback" not in out.stderr


def test_report_from_results_files_and_bad_paths(tmp_path):
    out = labkit("bench", "overhead", "--mode", "smoke", env_extra={"LABKIT_RESULTS_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    out = labkit("report", "--results", str(tmp_path / "results.csv"), "--out", str(tmp_path / "site"))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "site" / "report.md").read_text()
    assert "## overhead" in text and "fit_overhead_pct" in text and (tmp_path / "site" / "report_overhead_smoke.png").exists()
    out = labkit("report", "--results", str(tmp_path / "nope.csv"))
    assert out.returncode == 2 and "No results file" in out.stderr and "Traceback" not in out.stderr


def test_demo_refuses_an_unknown_notebook_in_one_line():
    out = labkit("demo", "99_nothing", "--no-browser")
    assert out.returncode == 2 and "choose one of" in out.stderr and "00_welcome" in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_coursemap_prints_the_measured_table():
    out = labkit("coursemap")
    assert out.returncode == 0, out.stderr
    assert "`11_speedrun`" in out.stdout and "| smoke | full |" in out.stdout and "measured on" in out.stdout
