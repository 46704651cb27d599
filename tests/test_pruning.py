import copy

import pytest
import torch
from torch.nn.utils import prune

from labkit import LabkitError, models, train
from labkit.techniques import pruning

TINY = pruning.PruneConfig(epochs=2, schedule=(0.5, 0.8), finetune_epochs=1, structured_epochs=1,
                           clusters=8, min_run_time=0.05)


@pytest.fixture
def trained(tiny_splits):
    torch.manual_seed(0)
    model = models.SmallCNN()
    train.fit(model, tiny_splits, epochs=2, lr=0.05, batch_size=64, device="cpu", progress=False)
    return model.eval()


def test_magnitude_mask_matches_torch_prune():
    torch.manual_seed(0)
    layer = torch.nn.Linear(20, 10)
    ours = pruning.magnitude_mask(layer.weight.detach(), 0.7)
    prune.l1_unstructured(layer, "weight", amount=0.7)
    assert torch.equal(ours, layer.weight_mask)
    assert ours.sum() == 60


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_bad_sparsity_says_what_to_do(bad):
    with pytest.raises(LabkitError, match=r"\[0, 1\)"):
        pruning.magnitude_mask(torch.ones(4), bad)
    with pytest.raises(LabkitError, match="sparsity"):
        pruning.prune_global(models.SmallCNN(), bad)


def test_global_and_layerwise_reach_the_sparsity():
    for fn in (pruning.prune_global, pruning.prune_layerwise):
        model = fn(models.SmallCNN(), 0.8)
        assert pruning.sparsity_of(model) == pytest.approx(0.8, abs=1e-3)
    layerwise = pruning.layer_sparsity(pruning.prune_layerwise(models.SmallCNN(), 0.8))
    assert all(s == pytest.approx(0.8, abs=0.01) for s in layerwise.values())
    with pytest.raises(LabkitError, match="did not take effect"):
        pruning.check_sparse(models.SmallCNN(), 0.5)


def test_iterative_prune_keeps_zeros_through_finetuning(tiny_splits, trained):
    model = copy.deepcopy(trained)
    steps = pruning.iterative_prune(model, tiny_splits, TINY)
    assert list(steps["sparsity"].round(3)) == [0.5, 0.8]
    assert pruning.sparsity_of(model) == pytest.approx(0.8, abs=1e-3)
    assert not any(prune.is_pruned(m) for _, m in pruning.prunable(model))  # masks folded in


def test_channel_pruning_at_keep_1_is_the_same_model(tiny_splits, trained):
    with pytest.raises(LabkitError, match="channels were not removed"):
        pruning.prune_channels(trained, 1.0)


def test_channel_pruning_keeps_the_kept_channels_exactly(trained):
    small = pruning.prune_channels(trained, 0.5)
    assert small.features[0].out_channels == 8 and small.features[3].out_channels == 16
    assert models.count_params(small) < models.count_params(trained) / 1.9
    # zeroing the dropped channels in the big model gives the same outputs as the small model
    keep1 = pruning._top_channels(trained.features[0].weight, 8)
    keep2 = pruning._top_channels(trained.features[3].weight[:, keep1], 16)
    masked = copy.deepcopy(trained)
    with torch.no_grad():
        drop1 = torch.ones(16, dtype=torch.bool); drop1[keep1] = False
        drop2 = torch.ones(32, dtype=torch.bool); drop2[keep2] = False
        masked.features[0].weight[drop1] = 0; masked.features[0].bias[drop1] = -1e4  # ReLU → 0
        masked.features[3].weight[drop2] = 0; masked.features[3].bias[drop2] = -1e4
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(small(x), masked(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(LabkitError, match="keep"):
        pruning.prune_channels(trained, 0.0)


def test_sparse_storage_is_smaller_and_lossless():
    model = pruning.make_permanent(pruning.prune_global(models.SmallCNN(), 0.9))
    assert pruning.sparse_bytes(model) < pruning.dense_bytes(model) / 4
    restored = pruning.load_sparse(pruning.sparse_state(model))
    for key, value in model.state_dict().items():
        assert torch.equal(restored[key], value)
    masked = pruning.prune_global(models.SmallCNN(), 0.9)
    assert pruning.dense_bytes(masked) > 1.5 * pruning.dense_bytes(models.SmallCNN())  # masks cost extra


def test_weight_sharing_leaves_k_values_per_layer():
    model = pruning.make_permanent(pruning.prune_global(models.SmallCNN(), 0.5))
    shared, storage = pruning.share_weights(model, 8)
    assert all(n <= 8 for n in pruning.distinct_values(shared).values())
    assert pruning.sparsity_of(shared) == pytest.approx(pruning.sparsity_of(model), abs=1e-4)
    with pytest.raises(LabkitError, match="clusters"):
        pruning.kmeans_1d(torch.randn(10), 0)


def test_kmeans_finds_obvious_clusters():
    values = torch.cat([torch.full((50,), -1.0), torch.full((50,), 2.0)]) + 0.01 * torch.randn(100)
    centroids, codes = pruning.kmeans_1d(values, 2)
    assert sorted(centroids.tolist()) == pytest.approx([-1.0, 2.0], abs=0.01)


def test_compare_fills_the_card(tiny_splits, trained):
    card, extra = pruning.compare(tiny_splits, TINY, dense=copy.deepcopy(trained))
    assert len(card.variants) == 4
    for column in ("accuracy", "latency_ms", "latency_b1_ms", "size_mb", "params"):
        assert all(card.value(v, column) > 0 for v in card.variants)
    assert card.speedup(card.variants[1], "size_mb") > 2
    assert extra["sparsity"] == pytest.approx(0.8, abs=1e-3)


def test_training_step_timers_run():
    assert pruning.train_step_ms(models.SmallCNN(width=4), TINY, batch=8) > 0
    steps = pruning.compare_train_steps({"a": models.SmallCNN(width=2), "b": models.SmallCNN(width=4)}, TINY, rounds=2)
    assert list(steps.index) == ["a", "b"] and (steps > 0).all()


def test_accuracy_at_prunes_copies_both_ways(tiny_splits, trained):
    before = copy.deepcopy(trained.state_dict())
    accs = pruning.accuracy_at(trained, tiny_splits, 0.9)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())  # the model is untouched
    pruned = {"layer-wise": pruning.prune_layerwise(copy.deepcopy(trained), 0.9),
              "global": pruning.prune_global(copy.deepcopy(trained), 0.9)}
    assert accs == {k: pruning.accuracy(m, tiny_splits) for k, m in pruned.items()}


def test_explorer_reports_and_refuses_bad_values(tiny_splits, trained):
    from labkit.ui.pruning import SparsityExplorer

    curve = pruning.sparsity_curve(trained, tiny_splits, [0.0, 0.5, 0.9])
    explorer = SparsityExplorer(trained, tiny_splits, curve, sparsity=0.5)
    assert "global_acc" in explorer.text.value and explorer.image.value
    assert explorer.update(1.0).startswith("⚠") and "[0, 1)" in explorer.message.value


def test_headline_keys(tiny_splits, monkeypatch):
    # headline("smoke") trains on 2,000 images (≈ 30 s); the same code path on the tiny data here
    monkeypatch.setattr(pruning, "config_for", lambda mode: TINY)
    monkeypatch.setattr(pruning.data, "load_for_mode", lambda mode: tiny_splits)
    report = pruning.headline("smoke")
    assert set(report.headline) == {"sparsity", "accuracy_drop_pt", "structured_speedup", "size_ratio"}
    assert report.headline["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert report.config["schedule"] == [0.5, 0.8] or report.config["schedule"] == (0.5, 0.8)
