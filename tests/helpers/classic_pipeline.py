"""The classic test-time pipeline, re-stated independently of img2img.media.processing.

Used by the tests as the reference our `--official` path must match bit for bit. It follows
the classic `test.py` with `--dataset_mode single` as documented (design.md, README.json of
the fixtures): `Image.open(p).convert('RGB')`; torchvision `Resize([256, 256], BICUBIC)`,
`ToTensor()`, `Normalize((0.5,) * 3, (0.5,) * 3)`; the generator with BatchNorm layers in
plain train mode (statistics of the batch of one) and dropout off, on a copy so running
stats are not touched; then numpy `((y + 1) / 2.0 * 255.0).astype(np.uint8)` and a PNG.
The networks themselves are checked against the reference checkpoints in test_models.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from img2img.models.norm import BatchNorm2d


def classic_transform() -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.Resize([256, 256], InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )


def classic_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm in nn.BatchNorm2d train mode (batch statistics), dropout off."""
    net = copy.deepcopy(net)
    net.train()
    for m in net.modules():
        if isinstance(m, BatchNorm2d):
            m.image_stats = False  # the stock nn.BatchNorm2d forward
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        return net(x)


def tensor2im(y: torch.Tensor) -> np.ndarray:
    image_numpy = y[0].cpu().float().numpy()
    image_numpy = (np.transpose(image_numpy, (1, 2, 0)) + 1) / 2.0 * 255.0
    return image_numpy.astype(np.uint8)


def classic_png(net: nn.Module, image_path: Path, out_path: Path) -> None:
    x = classic_transform()(Image.open(image_path).convert("RGB")).unsqueeze(0)
    Image.fromarray(tensor2im(classic_forward(net, x))).save(out_path)
