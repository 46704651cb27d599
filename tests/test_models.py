import pytest
import torch

from labkit import LabkitError, models


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "tiny_resnet"])
def test_models_map_images_to_logits(name):
    model = models.build(name, num_classes=7)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)


def test_width_knob_changes_the_size():
    assert models.count_params(models.SmallCNN(width=8)) < models.count_params(models.SmallCNN(width=16))
    resnet = models.TinyResNet()
    for p in resnet.backbone.parameters():
        p.requires_grad = False
    assert models.count_params(resnet, trainable_only=True) == sum(p.numel() for p in resnet.head.parameters())


def test_bad_knobs_and_names():
    with pytest.raises(LabkitError, match="at least 1"):
        models.SmallCNN(width=0)
    with pytest.raises(LabkitError, match="Unknown model"):
        models.build("resnet50")
