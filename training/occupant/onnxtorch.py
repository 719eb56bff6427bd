"""Rebuild part of an ONNX graph as a trainable torch module.

The pretrained start for the occupant model is YOLOX-nano's COCO backbone and neck (Apache-2.0),
and the only copy of those weights we have is the ONNX export in ../shared/models: its
initialisers are the convolution weights with BatchNorm folded in. Rather than re-typing the
YOLOX architecture (and getting a layer subtly wrong), this module walks the ONNX nodes that
produce the requested tensors and runs them with torch ops, each Conv's weight and bias as a
trainable Parameter. Only the ops YOLOX-nano's backbone and neck use are supported.
"""

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxSubgraph(nn.Module):
    """Runs the nodes of `model_path` needed for `outputs`, from the graph input `input_name`."""

    def __init__(self, model_path, outputs, input_name="images"):
        super().__init__()
        model = onnx.load(model_path)
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        producers = {}
        for n in model.graph.node:
            for o in n.output:
                producers[o] = n
        needed, stack = set(), list(outputs)
        while stack:
            t = stack.pop()
            if t == input_name:
                continue
            n = producers.get(t)
            if n is None or id(n) in needed:
                continue
            needed.add(id(n))
            stack.extend(i for i in n.input if i and i not in inits)
        self.nodes = [n for n in model.graph.node if id(n) in needed]
        self.input_name = input_name
        self.outputs = list(outputs)
        self.consts = {}
        self.convs = nn.ModuleDict()
        for n in self.nodes:
            if n.op_type == "Conv":
                a = _attrs(n)
                w = torch.from_numpy(inits[n.input[1]].copy())
                conv = nn.Conv2d(w.shape[1] * a.get("group", 1), w.shape[0], tuple(w.shape[2:]),
                                 stride=tuple(a.get("strides", [1, 1])),
                                 padding=tuple(a.get("pads", [0, 0, 0, 0])[:2]),
                                 dilation=tuple(a.get("dilations", [1, 1])),
                                 groups=a.get("group", 1), bias=len(n.input) > 2)
                pads = a.get("pads", [0, 0, 0, 0])
                if pads[:2] != pads[2:]:
                    raise ValueError(f"{n.name}: asymmetric padding {pads}")
                with torch.no_grad():
                    conv.weight.copy_(w)
                    if conv.bias is not None:
                        conv.bias.copy_(torch.from_numpy(inits[n.input[2]].copy()))
                self.convs[self._key(n)] = conv
            else:
                for i in n.input:
                    if i in inits:
                        self.consts[i] = inits[i]
            if n.op_type not in ("Conv", "Sigmoid", "Mul", "Add", "Concat", "MaxPool", "Slice", "Resize"):
                raise ValueError(f"unsupported op {n.op_type} in {n.name}")

    @staticmethod
    def _key(node):
        return node.name.replace(".", "_") or node.output[0].replace(".", "_").replace(":", "_")

    def forward(self, x):
        env = {self.input_name: x}
        for n in self.nodes:
            ins = [env.get(i) for i in n.input]
            a = _attrs(n)
            op = n.op_type
            if op == "Conv":
                y = self.convs[self._key(n)](ins[0])
            elif op == "Sigmoid":
                y = torch.sigmoid(ins[0])
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "MaxPool":
                k = a["kernel_shape"]
                p = a.get("pads", [0, 0, 0, 0])
                y = F.max_pool2d(ins[0], k, stride=a.get("strides", k), padding=p[:2])
            elif op == "Slice":
                starts, ends, axes, steps = (self.consts[i] for i in n.input[1:5])
                idx = [slice(None)] * ins[0].dim()
                for s, e, ax, st in zip(starts, ends, axes, steps):
                    idx[int(ax)] = slice(int(s), min(int(e), 1 << 30), int(st))
                y = ins[0][tuple(idx)]
            elif op == "Resize":
                scales = self.consts.get(n.input[2])
                if scales is None or a.get("mode", b"nearest") not in (b"nearest", "nearest"):
                    raise ValueError(f"{n.name}: only nearest resize by constant scales")
                y = F.interpolate(ins[0], scale_factor=tuple(float(s) for s in scales[2:]), mode="nearest")
            env[n.output[0]] = y
        return [env[o] for o in self.outputs]


# The three neck (PAN) outputs of YOLOX-nano, the inputs of its detection head's stems, at
# strides 8, 16 and 32 with 64, 128 and 256 channels.
YOLOX_NANO_NECK = ["input.471", "input.531", "input.591"]
YOLOX_NANO_NECK_CHANNELS = [64, 128, 256]
