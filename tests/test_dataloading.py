"""The input-pipeline technique: every pipeline yields the same data, faster ones are not different ones."""

import numpy as np
import pytest
import torch

from labkit import LabkitError, models
from labkit.results import ResultCard
from labkit.exercises import Hint
from labkit.exercises import dataloading as check
from labkit.techniques import dataloading as dl
from labkit.ui import dataloading as dlui


@pytest.fixture
def source() -> dl.Source:
    """64 random 28×28 uint8 'images' with 4 classes."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    return dl.make_source(images, rng.integers(0, 4, 64), mean=0.5, std=0.25)


def test_png_round_trip_is_exact():
    img = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    png = dl.encode_png(img)
    assert png.startswith(b"\x89PNG")
    assert torch.equal(dl.decode_png(png), torch.from_numpy(img).unsqueeze(0))
    with pytest.raises(LabkitError, match="not a PNG"):
        dl.decode_png(b"GIF89a" + png[6:])


def test_pipelines_agree_and_the_check_catches_a_stale_cache(source):
    dl.check_pipelines_agree(source)
    stale = dl.Source(source.pngs, source.X + 0.1, source.y, source.mean, source.std)
    with pytest.raises(LabkitError, match="stale"):
        dl.check_pipelines_agree(stale)


def test_batched_augmentation_equals_the_per_sample_one(source):
    dy, dx, flip = dl.random_choices(len(source), torch.Generator().manual_seed(3))
    batched = dl.augment_batch(source.X, dy, dx, flip)
    one_by_one = torch.stack([dl.augment_one(x, int(a), int(b), bool(f)) for x, a, b, f in zip(source.X, dy, dx, flip)])
    assert torch.equal(batched, one_by_one)
    centre = dl.augment_one(source.X[0], dl.PAD, dl.PAD, False)  # the middle crop, unflipped, is the image
    assert torch.equal(centre, source.X[0])


@pytest.mark.parametrize("pipeline", dl.PIPELINES)
def test_every_pipeline_gives_each_image_once_per_epoch(source, pipeline):
    loader = dl.make_loader(dl.LoaderSetting(pipeline, batch_size=24), source, augment=False)
    xs, ys = zip(*loader)
    X, y = torch.cat(xs), torch.cat(ys)
    assert [len(b) for b in ys] == [24, 24, 16]
    order = torch.stack([torch.nonzero((source.X == x).flatten(1).all(1)).flatten()[0] for x in X])
    assert sorted(order.tolist()) == list(range(len(source)))
    assert torch.equal(y, source.y[order])


def test_workers_give_the_same_data_as_the_main_process(source):
    setting = dl.LoaderSetting("naive", batch_size=16, num_workers=2)
    main = torch.cat([x for x, _ in dl.make_loader(dl.LoaderSetting("naive", batch_size=16), source, augment=False)])
    workers = torch.cat([x for x, _ in dl.make_loader(setting, source, augment=False)])
    assert torch.equal(main, workers)  # same seed, same order; workers only move the work elsewhere


def test_on_device_check(source):
    dl.check_on_device(dl.make_loader(dl.LoaderSetting("on_device"), source, "cpu"), "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(LabkitError, match="on_device"):
            dl.check_on_device(dl.make_loader(dl.LoaderSetting("batched"), source, "cpu"), "cuda")


@pytest.mark.parametrize("bad, message", [
    (dict(pipeline="fast"), "not a pipeline"), (dict(batch_size=0), "batch_size"),
    (dict(num_workers=-1), "num_workers"), (dict(prefetch_factor=0), "prefetch_factor"),
    (dict(read_latency_ms=-1.0), "from 0 to 100"), (dict(mp_context="thread"), "mp_context"),
])
def test_bad_settings_raise_one_line(source, bad, message):
    with pytest.raises(LabkitError, match=message):
        dl.make_loader(dl.LoaderSetting(**bad), source)


def test_bad_source_and_measure_arguments(source):
    with pytest.raises(LabkitError, match="uint8"):
        dl.make_source(np.zeros((2, 28, 28), dtype=np.float32), np.zeros(2), 0.5, 0.25)
    with pytest.raises(LabkitError, match="labels"):
        dl.make_source(np.zeros((2, 28, 28), dtype=np.uint8), np.zeros(3), 0.5, 0.25)
    with pytest.raises(LabkitError, match="steps"):
        dl.measure(dl.LoaderSetting(), source, None, steps=0)


def test_measure_times_wait_and_compute_apart(source):
    model = models.MLP(num_classes=4)
    slow = dl.measure(dl.LoaderSetting("naive", batch_size=16, read_latency_ms=2.0), source, model,
                      steps=3, warmup_steps=1)
    assert len(slow.wait_s) == len(slow.compute_s) == 3
    assert slow.wait_ms > 16 * 2.0 * 0.9  # 16 images × 2 ms of simulated storage latency, all spent waiting
    assert 0 < slow.wait_pct < 100 and slow.samples_per_s > 0 and slow.first_batch_s > 0
    alone = dl.measure(dl.LoaderSetting("batched", batch_size=16), source, None, steps=3, warmup_steps=1)
    assert len(alone.wait_s) == 3 and alone.samples_per_s > 0  # the loader alone: no model


def test_first_batch_latency_with_and_without_persistent_workers(source):
    for persistent in (False, True):
        latencies = dl.first_batch_latency(dl.LoaderSetting("naive", batch_size=32, num_workers=1,
                                                            persistent_workers=persistent), source, epochs=2)
        assert len(latencies) == 2 and all(t > 0 for t in latencies)


def test_spawned_workers_can_import_the_dataset(source):
    """What Windows and macOS do: a fresh Python unpickles the dataset, so its class must be importable."""
    latency = dl.first_batch_latency(dl.LoaderSetting("naive", batch_size=32, num_workers=1, mp_context="spawn"),
                                     source, epochs=1)
    assert latency[0] > 0


def test_compare_and_the_explorer(source, capsys):
    cfg = dl.LoadingConfig(model="mlp", steps=2, warmup_steps=1, repeats=2, batch_size=16)
    out = dl.compare({"naive": dl.LoaderSetting("naive"), "batched": dl.LoaderSetting("batched")}, source, cfg)
    assert set(out) == {"naive", "batched"} and len(out["naive"]["samples_per_s"]) == 2
    assert out["batched"]["loader_samples_per_s"] > 0
    explorer = dlui.PipelineExplorer(source, steps=2, warmup_steps=1, device="cpu")
    times = explorer.run()
    assert "samples_per_s=" in capsys.readouterr().out and bytes(explorer.chart.value).startswith(b"\x89PNG")
    assert times.batch_size == 128
    explorer.num_workers.value = -1
    explorer.run_button.click()  # a bad value: a one-line message inside the widget, no traceback
    assert "num_workers" in explorer.message.value and not explorer.run_button.disabled
    card = ResultCard(baseline="a").add({"variant": "a", "images_per_s": 10.0, "wait_ms": 1.0, "compute_ms": 2.0,
                                         "data_wait_pct": 33.0})
    figs = [dlui.plot_timelines({"a": times, "b": times}), dlui.plot_wait_compute(card),
            dlui.plot_first_batch({"off": [0.1, 0.1], "on": [0.1, 0.01]})]
    assert all(f.axes for f in figs)


def test_effective_setting_says_which_knobs_do_nothing_here():
    setting, notes = dl.effective_setting(dl.LoaderSetting("batched", num_workers=2, pin_memory=True), "cpu")
    assert setting.num_workers == 0 and len(notes) == 2 and "pin_memory" in notes[1]
    assert dl.effective_setting(dl.LoaderSetting("naive", num_workers=2), "cpu") == (
        dl.LoaderSetting("naive", num_workers=2), [])
    with pytest.raises(LabkitError, match="num_workers"):
        dl.effective_setting(dl.LoaderSetting("naive", num_workers=-1), "cpu")


def test_seeded_model_starts_from_the_same_weights():
    a, b, c = dl.seeded_model("mlp"), dl.seeded_model("mlp"), dl.seeded_model("mlp", seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_headline_smoke_returns_the_keys():
    report = dl.headline("smoke")
    h = report.headline
    expected = {f"{name}_samples_per_s" for name in dl.HEADLINE_SETTINGS} | {"best_vs_naive", "batched_vs_naive"}
    assert set(h) == expected
    rates = {name: report.card.value(name, "images_per_s") for name in dl.HEADLINE_SETTINGS}
    assert h["batched_vs_naive"] == pytest.approx(rates["batched"] / rates["naive"])
    assert h["best_vs_naive"] == pytest.approx(max(rates.values()) / rates["naive"])
    assert report.card.baseline == "naive" and report.config["steps"] == 4
    assert "dataloading" in report.to_json()


# --- exercises: a right answer passes, a typical wrong one gets a hint, an untouched one waits ---


def test_normalise_and_flip_check():
    def right(x, flip, mean, std):
        x = (x.float() / 255 - mean) / std
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def upside_down(x, flip, mean, std):  # flipped along the rows (dim -2) instead of the columns
        x = (x.float() / 255 - mean) / std
        return torch.where(flip[:, None, None, None], x.flip(-2), x)

    assert "passed" in check.normalise_and_flip(right)
    with pytest.raises(Hint, match="upside down"):
        check.normalise_and_flip(upside_down)
    with pytest.raises(Hint, match="every image"):
        check.normalise_and_flip(lambda x, f, m, s: right(x, torch.ones_like(f), m, s))
    with pytest.raises(Hint, match="no image"):
        check.normalise_and_flip(lambda x, f, m, s: right(x, torch.zeros_like(f), m, s))
    with pytest.raises(Hint, match="255"):
        check.normalise_and_flip(lambda x, f, m, s: right((x.float() * 255), f, m, s))
    assert "not attempted" in check.normalise_and_flip(lambda x, f, m, s: None)


def test_augmentation_effect_pairs_plain_and_augmented_runs_by_seed(monkeypatch):
    tiny = dl.AugmentConfig(n_train=60, n_test=40, epochs=1, batch_size=20, seeds=(0, 1))
    rows = dl.augmentation_effect(tiny)
    assert [(r["seed"], r["augment"]) for r in rows] == [(0, False), (0, True), (1, False), (1, True)]
    for r in rows:
        assert r["gap_pt"] == pytest.approx(100 * (r["train_acc"] - r["test_acc"]))
    v = dl.augmentation_verdicts(rows)
    assert set(v) == {"test_acc", "gap"} and v["gap"].diffs == pytest.approx(
        (rows[1]["gap_pt"] - rows[0]["gap_pt"], rows[3]["gap_pt"] - rows[2]["gap_pt"]))
    assert dl.augmentation_verdicts(rows[:2]) is None  # one seed: no verdict


def test_augmentation_plot_draws_one_line_per_seed():
    from labkit.ui import dataloading as dui

    rows = [{"seed": s, "augment": a, "test_acc": 0.8 + 0.01 * s, "gap_pt": 5.0 - 3 * a} for s in (0, 1, 2)
            for a in (False, True)]
    fig = dui.plot_augmentation(rows)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 3 + 1  # + the zero line
