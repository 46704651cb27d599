"""The few small models every notebook shares, with width and depth knobs.

All take Fashion-MNIST-shaped input (N, 1, 28, 28) and return logits for `num_classes`.
"""

from __future__ import annotations

import torch
from torch import nn

from labkit.errors import LabkitError


def _check_positive(**knobs: int) -> None:
    for name, value in knobs.items():
        if not isinstance(value, int) or value < 1:
            raise LabkitError(f"{name}={value!r} must be a whole number of at least 1.")


class MLP(nn.Module):
    """Flatten, then `depth` hidden layers of `width` units with ReLU, then a linear classifier."""

    def __init__(self, width: int = 64, depth: int = 1, num_classes: int = 10, in_features: int = 784):
        super().__init__()
        _check_positive(width=width, depth=depth, num_classes=num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """conv(w)-pool-conv(2w)-pool-fc(hidden)-fc: the lab's workhorse (≈ 3 s/epoch on 2 CPU cores at w=16)."""

    def __init__(self, width: int = 16, hidden: int = 64, num_classes: int = 10):
        super().__init__()
        _check_positive(width=width, hidden=hidden, num_classes=num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),          # 28 -> 14
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with a skip connection (a 1x1 conv when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.skip(x))


class TinyResNet(nn.Module):
    """A stem and three stages of residual blocks (widths w, 2w, 4w), global pooling, a linear head.

    `backbone` and `head` are separate attributes so transfer learning can freeze or replace them.
    """

    def __init__(self, width: int = 16, blocks_per_stage: int = 1, num_classes: int = 10):
        super().__init__()
        _check_positive(width=width, blocks_per_stage=blocks_per_stage, num_classes=num_classes)
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks_per_stage):
                stride = 2 if stage > 0 and b == 0 else 1  # 28 -> 14 -> 7
                layers.append(ResidualBlock(c_in, c_out, stride))
                c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


MODELS = {"mlp": MLP, "small_cnn": SmallCNN, "tiny_resnet": TinyResNet}


def build(name: str, **knobs) -> nn.Module:
    """A model by name ('mlp', 'small_cnn', 'tiny_resnet') with its knobs, e.g. build('small_cnn', width=8)."""
    if name not in MODELS:
        raise LabkitError(f"Unknown model {name!r}: choose one of {', '.join(MODELS)}.")
    return MODELS[name](**knobs)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those that will be trained)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
