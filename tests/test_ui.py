import pytest

from labkit import LabkitError, env, models, train, ui


def _variants(tiny_splits, epochs=2):
    def run(width):
        def variant(callbacks):
            env.seed_everything(0)
            return train.fit(models.MLP(width=width, num_classes=4), tiny_splits, epochs=epochs, batch_size=64,
                             callbacks=callbacks, progress=False)
        return variant
    return {"narrow": run(8), "wide": run(64)}


def test_run_returns_the_card_and_prints_it(tiny_splits, capsys):
    panel = ui.ComparisonPanel(_variants(tiny_splits), target_acc=0.5, title="widths")
    card = panel.run()
    assert card.variants == ["narrow", "wide"]
    assert card.value("wide", "time_to_target_s") > 0  # the panel's target is read from the history
    assert "widths" in capsys.readouterr().out
    assert bytes(panel.curves.value).startswith(b"\x89PNG") and "<table" in panel.table.value
    assert panel.progress.value == 2 and not panel.run_button.disabled


def test_baseline_is_always_measured(tiny_splits):
    panel = ui.ComparisonPanel(_variants(tiny_splits), baseline="narrow")
    assert panel.run(["wide"], echo=False).variants == ["narrow", "wide"]


def test_stop_keeps_finished_rows(tiny_splits):
    variants = _variants(tiny_splits, epochs=3)
    panel = ui.ComparisonPanel(variants)

    def stopping(callbacks):
        panel.stop()  # as if the learner pressed Stop during this variant
        return variants["wide"](callbacks)

    panel.variants["wide"] = stopping
    card = panel.run(echo=False)
    assert card.variants == ["narrow", "wide"]
    assert card.rows[0]["interrupted"] is False and card.rows[1]["interrupted"] is True
    assert "stopped" in panel.status.value


def test_button_runs_in_the_background_and_errors_reach_the_learner(tiny_splits):
    def broken(callbacks):
        raise LabkitError("lr must be greater than 0")

    panel = ui.ComparisonPanel({**_variants(tiny_splits), "broken": broken})
    panel.run_button.click()
    card = panel.wait(60)
    assert card.variants == ["narrow", "wide"]  # finished rows survive the failure
    assert "failed" in panel.status.value
    assert any("lr must be greater than 0" in out.get("text", "") for out in panel.log.outputs)


def test_bad_panel_input():
    with pytest.raises(LabkitError):
        ui.ComparisonPanel({})
    panel = ui.ComparisonPanel({"a": lambda cb: {"accuracy": 1.0}}, baseline="a")
    with pytest.raises(LabkitError, match="Unknown variant"):
        panel.run(["b"])
    for box in panel.checkboxes.values():
        box.value = False
    with pytest.raises(LabkitError, match="No variant is ticked"):
        panel.run()


def test_text_summary():
    assert ui.text_summary("explorer", {"bits": 4, "error": 0.01234}) == "explorer: bits=4, error=0.01234"
