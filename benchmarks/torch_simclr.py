"""The PyTorch twin of keras_ssl's SimCLR ResNet-18 train step (throughput.py --compare-pytorch).

Imported only when ``torch`` is installed (``pip install torch==2.13.0``, CPU build). The model
mirrors ``keras_ssl.backbones.ResNet18`` with the CIFAR stem and ``keras_ssl.methods.SimCLR``'s
projection head layer for layer, so both sides have the same trainable parameter count:

- stem: 3x3 stride-1 convolution (no bias), BatchNorm, ReLU, no max-pool;
- four stages of two basic blocks (64-128-256-512), a 1x1 projection shortcut (conv + BN)
  where the stride or width changes, global average pooling to 512-d features;
- head: Linear(512 -> hidden, no bias), BatchNorm1d (Keras' epsilon 1e-3 and momentum 0.99,
  i.e. PyTorch momentum 0.01), ReLU, Linear(hidden -> 128) with bias;
- NT-Xent on the 2N concatenated projections (cosine similarity / temperature, self-similarity
  masked), computed in float32;
- one SGD step (momentum 0.9) per batch, both views in one forward pass.
"""

import statistics
import time

import torch
from torch import nn
from torch.nn import functional


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a (projected) shortcut."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1),
            )

    def forward(self, x):
        y = functional.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return functional.relu(self.shortcut(x) + y)


class SimCLRResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem and SimCLR's projection head.

    Args:
        in_channels: image channels.
        hidden_dim: hidden width of the projection head (keras_ssl: the feature size, 512).
        projection_dim: output size of the projection head.
    """

    def __init__(self, in_channels=3, hidden_dim=512, projection_dim=128):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64, eps=1e-5, momentum=0.1),
            nn.ReLU(),
        )
        blocks, channels = [], 64
        for stage, width in enumerate((64, 128, 256, 512)):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.projector = nn.Sequential(
            nn.Linear(channels, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.Linear(hidden_dim, projection_dim),
        )

    def forward(self, images):
        features = self.blocks(self.stem(images)).mean(dim=(2, 3))
        return self.projector(features)


def nt_xent(z_a, z_b, temperature):
    """Mean NT-Xent loss of the two views' projections ``[n, d]`` (float32).

    Args:
        z_a: projections of the first views.
        z_b: projections of the second views, row for row.
        temperature: softmax temperature.

    Returns:
        The scalar loss: mean over the 2n views of ``-log softmax`` of the partner's logit.
    """
    z = functional.normalize(torch.cat([z_a, z_b]).float(), dim=1)
    logits = z @ z.t() / temperature
    n = z_a.shape[0]
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), -1e9)
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return functional.cross_entropy(logits, partners)


def count_parameters(model):
    """Number of trainable parameters (BatchNorm's scale and shift included, as in Keras)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure_step(
    batch=128,
    image_size=32,
    precision="float32",
    steps=3,
    repeats=3,
    temperature=0.2,
    threads=None,
    channels_last=False,
):
    """Times the PyTorch SimCLR train step; runs in its own process.

    Args:
        batch: images per step (each gives two views: 2 x batch images go through the model).
        image_size: side of the square RGB views.
        precision: ``"float32"`` or ``"mixed_bfloat16"`` (``torch.autocast("cpu", bfloat16)``).
        steps: steps per timed repeat.
        repeats: timed repeats after one warm-up repeat of ``steps`` steps.
        temperature: NT-Xent temperature.
        threads: intra-op threads (``torch.set_num_threads``); ``None`` keeps PyTorch's default
            (the number of physical cores).
        channels_last: use the NHWC memory format for the model and the views.

    Returns:
        A dict: ``images_per_s`` (median of the repeats), ``spread`` (min, max), ``warmup_s``,
        ``params``, ``threads``.
    """
    if precision not in ("float32", "mixed_bfloat16"):
        raise ValueError(
            f"`precision` must be 'float32' or 'mixed_bfloat16'; received {precision!r}. "
            "Fix: pass one of those."
        )
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    model = SimCLRResNet18()
    views = torch.rand(2 * batch, 3, image_size, image_size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        views = views.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "float32"):
            projections = model(views)
        z_a, z_b = projections.float().chunk(2)
        loss = nt_xent(z_a, z_b, temperature)
        loss.backward()
        optimizer.step()
        return loss

    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss = float(loss.detach())
        times.append(time.perf_counter() - start)
    rates = sorted(batch * steps / seconds for seconds in times[1:])
    return {
        "images_per_s": statistics.median(rates),
        "spread": [rates[0], rates[-1]],
        "warmup_s": times[0],
        "params": count_parameters(model),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "loss": loss,
    }
