"""The occupant classifier: YOLOX-nano's COCO backbone with four sigmoid heads.

Heads (in this order, the order of the exported `scores` output):
  0 phone             P(a phone is held | the hands and head can be judged)
  1 phone_visible     P(the hands and head can be judged)
  2 no_seatbelt       P(no belt | the chest and door-side shoulder can be judged)
  3 seatbelt_visible  P(the chest and door-side shoulder can be judged)
The exported model gives the four sigmoid probabilities. The Go stage graph judges a state only
where its visibility reaches the gate chosen in training (a dark cabin or dark clothing stays
`unknown`, never an offence), then compares the condition's probability with its threshold.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from onnxtorch import OnnxSubgraph

# Backbone tensors of the YOLOX-nano ONNX export: dark3 (64 ch, stride 8), dark4 (128 ch,
# stride 16) and dark5 (256 ch, stride 32, after the SPP bottleneck).
DARK3, DARK4, DARK5 = "input.175", "input.283", "input.359"
CHANNELS = (64, 128, 256)
HEADS = ("phone", "phone_visible", "no_seatbelt", "seatbelt_visible")


class OccupantNet(nn.Module):
    def __init__(self, base_onnx, width=96, dropout=0.3):
        super().__init__()
        # The stem (Focus, dark2, dark3) stays frozen: generic edges and textures, and the
        # costliest layers to back-propagate through at full crop resolution.
        self.stem = OnnxSubgraph(base_onnx, [DARK3])
        for p in self.stem.parameters():
            p.requires_grad_(False)
        self.trunk = OnnxSubgraph(base_onnx, [DARK4, DARK5], input_name=DARK3)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width), nn.SiLU()) for c in CHANNELS)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width * len(CHANNELS), len(HEADS))

    def train(self, mode=True):
        super().train(mode)
        self.stem.eval()
        return self

    def forward(self, x):
        """x: BGR, 0..255, NCHW. Returns the four logits."""
        with torch.no_grad():
            d3 = self.stem(x)[0]
        return self.head(d3)

    def head(self, d3):
        """The trainable part, from the frozen stem's output (training precomputes that)."""
        d4, d5 = self.trunk(d3)
        pooled = []
        for f, lat in zip((d3, d4, d5), self.lateral):
            f = lat(f)
            # Max pooling answers "is it anywhere" (a phone at the ear); mean pooling the
            # overall state (a strap across the whole chest).
            pooled += [F.adaptive_max_pool2d(f, 1).flatten(1), F.adaptive_avg_pool2d(f, 1).flatten(1)]
        return self.fc(self.drop(torch.cat(pooled, 1)))


class Exported(nn.Module):
    """What ships: the four sigmoid probabilities."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.sigmoid(self.net(image))


def probabilities(logits):
    """The exported scores from logits, for out-of-fold evaluation."""
    return torch.sigmoid(torch.as_tensor(logits)).numpy()
