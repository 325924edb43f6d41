"""Make the PyTorch-exported ONNX test files in this folder and their expected numbers.

The files are real exporter output (another producer than onnx's own model zoo), and
expected.json holds numbers taken from torch itself at export time, so the tests compare
cnngraph against an oracle that never looked at the ONNX graph:

* ``trainable``: ``sum(p.numel() for p in model.parameters())``;
* ``non_trainable``: the BatchNorm running_mean + running_var elements (num_batches_tracked is
  a training counter, never exported, and not counted);
* ``outputs``: the output shape torch computes at batch 1 and at batch 4;
* ``conv_linear_macs``: forward hooks on every nn.Conv2d (|out| * in_channels/groups * kh * kw)
  and nn.Linear (rows * in_features * out_features, rows = |out| / out_features, i.e. the batch
  for a 2-D input) at batch 1 and 4;
* ``conv_transpose_macs``: hooks on nn.ConvTranspose2d (|in| * out_channels/groups * kh * kw),
  recorded apart because the tests sum Conv/Gemm/MatMul layers;
* ``blocks``: for every module with children, keyed by the scope path the exporter writes into
  node names (layer1/layer1.0), its trainable and BN-statistics counts and the conv/linear MACs
  inside it at batch 1;
* ``probe``: torch's output at batch 1 on a linspace(-1, 1) input (first values, sum of
  magnitudes), so onnxruntime can show that the file computes what the module does.

Batch norm stays as BatchNormalization nodes: the models are exported in eval mode but with
``training=torch.onnx.TrainingMode.PRESERVE``. With the default (``TrainingMode.EVAL``) the
TorchScript exporter runs its eval peephole pass, which folds each BN into the preceding Conv
and the file would hold neither the BN scale/shift nor the running statistics. This script
checks that each file has one BatchNormalization node per nn.BatchNorm2d and no external data.

The exception is ``resnet18_dynamo_op18.onnx``: the dynamo exporter's optimizer always folds BN
into the conv before it, and has no option that keeps BN short of turning all its optimization
off (that leaves zero conv biases computed at run time from the input's dtype, which no real
file has). Its expected ``trainable`` is what the file holds, derived from torch's modules:
torch's count minus each BN's gamma and beta plus one conv bias of C per BN, and
``non_trainable`` 0; torch's own counts are kept as ``torch_trainable`` /
``torch_non_trainable`` in every entry.

Every file has one input ``input`` of shape N x 3 x H x W with the batch axis named 'N'
(``dynamic_axes``) and one output ``output`` with the same batch axis. The TorchScript exporter
(``dynamo=False``) makes every file; ``resnet18_dynamo_op18.onnx`` comes from the dynamo
exporter (``dynamo=True``, needs onnxscript) and is skipped if that exporter is not available.

Not run by the test suite (it needs torch). To re-run it, from the repository root::

    pip install torch==2.13.0 onnxscript   # CPU wheel; onnxscript only for the dynamo file
    python tests/data/make_models.py

It writes tests/data/*.onnx and tests/data/expected.json, seeded, so a re-run with the same
torch version gives the same numbers (the weights' bytes may differ across torch versions; no
test reads them).
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
BATCHES = (1, 4)


# -- ResNet-18 (torchvision's module names, widths 8-16-32-64) -------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, widths=(8, 16, 32, 64), num_classes=10):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(widths[0], 2, 1)
        self.layer2 = self._make_layer(widths[1], 2, 2)
        self.layer3 = self._make_layer(widths[2], 2, 2)
        self.layer4 = self._make_layer(widths[3], 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- MobileNetV2 (torchvision's structure and names, width ~0.25) ----------------------------
class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (channels), n (repeats), s (first stride)
    SETTING = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 24, 2, 2), (6, 32, 1, 1))

    def __init__(self, num_classes=10, stem=8, last=128):
        super().__init__()
        features = [ConvBNReLU6(3, stem, stride=2)]
        cin = stem
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU6(cin, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# -- SE-ResNet units ------------------------------------------------------------------------
class SqueezeExcitation(nn.Module):
    """Global average pool -> Linear (C -> C/r) -> ReLU -> Linear (C/r -> C) -> Sigmoid ->
    channel-wise Mul. The reshapes use the run-time batch (x.size(0)), as SENet code does."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(channels // reduction, channels)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        b, c = x.size(0), x.size(1)
        s = self.avg_pool(x).view(b, c)
        s = self.sigmoid(self.fc2(self.relu(self.fc1(s)))).view(b, c, 1, 1)
        return x * s


class SEBasicBlock(BasicBlock):
    def __init__(self, inplanes, planes, stride=1, downsample=None, reduction=4):
        super().__init__(inplanes, planes, stride, downsample)
        self.se = SqueezeExcitation(planes, reduction)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class SEResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(SEBasicBlock(16, 16), SEBasicBlock(16, 16))
        down = nn.Sequential(nn.Conv2d(16, 32, 1, 2, bias=False), nn.BatchNorm2d(32))
        self.layer2 = nn.Sequential(SEBasicBlock(16, 32, 2, down), SEBasicBlock(32, 32))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- Inception modules (GoogLeNet-style, torchvision's BasicConv2d names) --------------------
class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = BasicConv2d(3, 16, kernel_size=7, stride=2, padding=3)
        # ceil_mode matters here: 32 -> 16 (floor would give 15)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(16, 8, 8, 16, 4, 8, 8)     # -> 40 channels
        self.inception3b = Inception(40, 16, 12, 24, 4, 8, 8)   # -> 56 channels
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(56, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# -- Tiny encoder-decoder: ConvTranspose, Upsample, LayerNorm, GELU --------------------------
class ConvNeXtStyleBlock(nn.Module):
    """Channels-last LayerNorm and a Linear -> GELU -> Linear MLP on N x H x W x C (MatMul in
    ONNX), as ConvNeXt does it."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 2 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(2 * dim, dim)

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.GELU())          # 32x32
        self.block = ConvNeXtStyleBlock(16)
        self.enc2 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.GELU())         # 16x16
        self.up1 = nn.ConvTranspose2d(32, 16, 2, stride=2)                        # 32x32
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")                    # 64x64
        self.dec = nn.Sequential(nn.Conv2d(16, 8, 3, 1, 1), nn.GELU())
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        s = self.block(self.enc1(x))
        y = self.up1(self.enc2(s)) + s
        y = self.dec(self.up2(y))
        y = F.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=False)
        return self.head(y)                                                       # 32x32


# -- what to export --------------------------------------------------------------------------
# file stem -> (model factory, input H=W, opset, exporter)
FILES = {
    "resnet18_op9": (ResNet18, 64, 9, "torchscript"),
    "resnet18_op13": (ResNet18, 64, 13, "torchscript"),
    "resnet18_op17": (ResNet18, 64, 17, "torchscript"),
    "mobilenetv2_op13": (MobileNetV2, 64, 13, "torchscript"),
    "se_resnet_op13": (SEResNet, 32, 13, "torchscript"),
    "inception_op13": (InceptionNet, 64, 13, "torchscript"),
    "tiny_unet_op13": (TinyUNet, 64, 13, "torchscript"),
    "tiny_unet_op17": (TinyUNet, 64, 17, "torchscript"),  # LayerNormalization as one node
    "resnet18_dynamo_op18": (ResNet18, 64, 18, "dynamo"),
}


def build(factory) -> nn.Module:
    torch.manual_seed(0)
    model = factory()
    # Distinct, trained-looking norm parameters and running statistics. With the default
    # init every BN/LayerNorm weight is all ones and every bias all zeros, and the exporter
    # deduplicates initializers of equal value: it keeps one tensor per shape and makes the
    # others Identity nodes of it, so the file would hold fewer weights than torch counts.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def torch_counts(model: nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters())
    non_trainable = sum(m.running_mean.numel() + m.running_var.numel()
                        for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return {"trainable": trainable, "non_trainable": non_trainable,
            "batchnorms": sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())}


def hooked_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict, dict]:
    """Run the model once; MACs of each conv/linear and each conv-transpose module (by its
    dotted name), from forward hooks."""
    macs: dict[str, int] = {}
    tmacs: dict[str, int] = {}

    def conv_hook(name):
        def hook(m, inp, out):
            kh, kw = m.kernel_size
            macs[name] = macs.get(name, 0) + out.numel() * (m.in_channels // m.groups) * kh * kw
        return hook

    def linear_hook(name):
        def hook(m, inp, out):
            rows = out.numel() // m.out_features
            macs[name] = macs.get(name, 0) + rows * m.in_features * m.out_features
        return hook

    def convt_hook(name):
        def hook(m, inp, out):
            kh, kw = m.kernel_size
            tmacs[name] = (tmacs.get(name, 0)
                           + inp[0].numel() * (m.out_channels // m.groups) * kh * kw)
        return hook

    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook(name)))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook(name)))
        elif isinstance(m, nn.ConvTranspose2d):
            handles.append(m.register_forward_hook(convt_hook(name)))
    with torch.no_grad():
        y = model(x)
    for h in handles:
        h.remove()
    return y, macs, tmacs


def probe(model: nn.Module, shape) -> dict:
    """torch's output on a fixed input the test can rebuild without torch (a linspace from -1
    to 1): its first values and the sum of its magnitudes, to run the file against."""
    x = torch.linspace(-1.0, 1.0, int(torch.Size(shape).numel()), dtype=torch.float32)
    with torch.no_grad():
        y = model(x.reshape(shape)).reshape(-1)
    return {"first": [round(float(v), 6) for v in y[:10]],
            "abs_sum": round(float(y.abs().sum()), 6)}


def scope_paths(model: nn.Module) -> dict[str, str]:
    """Module dotted name -> the path the TorchScript exporter puts in node names.

    Each level is the module's name relative to its nearest ancestor that is not an
    nn.Sequential (the model counts as one): 'layer2.0.downsample.0' is
    'layer2/layer2.0/downsample/downsample.0', so its Conv is named
    '/layer2/layer2.0/downsample/downsample.0/Conv'. check_file() checks the rule on the file.
    """
    modules = dict(model.named_modules())
    paths = {}
    for name in modules:
        if not name:
            continue
        parts = name.split(".")
        levels = []
        anchor = 0  # parts[:anchor] is the nearest non-Sequential ancestor's name
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if prefix not in modules:
                continue  # a dotted index part only
            levels.append(".".join(parts[anchor:depth]))
            if not isinstance(modules[prefix], nn.Sequential):
                anchor = depth
        paths[name] = "/".join(levels)
    return paths


def block_subtotals(model: nn.Module, macs: dict[str, int]) -> dict[str, dict]:
    """For every module that has children (a block), keyed by its scope path: the parameters
    and BN statistics it holds and the conv/linear MACs inside it. The exporter names each
    node after the leaf module that emits it, and cnngraph's block is that name less the
    leaf, so a block's subtotal covers exactly the leaves inside the module."""
    paths = scope_paths(model)
    blocks = {}
    for name, m in model.named_modules():
        if not name or not any(True for _ in m.children()):
            continue
        trainable = sum(p.numel() for p in m.parameters())
        if trainable == 0:
            continue
        non_trainable = sum(b.running_mean.numel() + b.running_var.numel()
                            for b in m.modules() if isinstance(b, nn.BatchNorm2d))
        inside = sum(v for k, v in macs.items() if k.startswith(name + "."))
        blocks[paths[name]] = {"module": name, "trainable": trainable,
                               "non_trainable": non_trainable, "conv_linear_macs": inside}
    return blocks


def export(model: nn.Module, x: torch.Tensor, path: str, opset: int, exporter: str) -> None:
    common = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(
                model, (x,), path, dynamo=False,
                dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                training=torch.onnx.TrainingMode.PRESERVE,  # keep BN (see the docstring)
                do_constant_folding=True, export_params=True, **common)
        else:
            batch = torch.export.Dim("N", min=1, max=1024)
            program = torch.onnx.export(model, (x,), dynamo=True, external_data=False,
                                        dynamic_shapes={"x": {0: batch}}, **common)
            program.save(path, external_data=False)


def check_file(path: str, counts: dict, folded: bool, paths, with_params) -> None:
    import onnx

    model = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(model)
    external = [i.name for i in model.graph.initializer
                if i.data_location == onnx.TensorProto.EXTERNAL]
    assert not external, f"{path}: external data {external[:3]}"
    bns = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    want = 0 if folded else counts["batchnorms"]
    assert bns == want, f"{path}: {bns} BN nodes, expected {want}"
    assert not os.path.exists(path + ".data"), f"{path}: wrote external data"
    if paths is not None:  # the scope rule: every module holding weights names some node
        names = [n.name for n in model.graph.node]
        for module, scope in paths.items():
            if module in with_params:
                assert any(n.startswith(f"/{scope}/") for n in names), f"{path}: no /{scope}/"
    # No initializer shared through Identity (see build()): the file holds every weight once.
    inits = {i.name for i in model.graph.initializer}
    shared = [n.input[0] for n in model.graph.node
              if n.op_type == "Identity" and n.input[0] in inits]
    assert not shared, f"{path}: deduplicated initializers {shared[:3]}"


def main() -> int:
    expected = {}
    for stem, (factory, size, opset, exporter) in FILES.items():
        path = os.path.join(HERE, f"{stem}.onnx")
        model = build(factory)
        counts = torch_counts(model)
        folded = exporter == "dynamo"
        entry = {"exporter": exporter, "opset": opset, "input": [1, 3, size, size],
                 "torch_trainable": counts["trainable"],
                 "torch_non_trainable": counts["non_trainable"],
                 "batchnorms": counts["batchnorms"], "bn_folded": folded,
                 "outputs": {}, "conv_linear_macs": {}, "conv_transpose_macs": {}}
        if folded:
            # The dynamo exporter's optimizer (onnxscript's FuseBatchNormIntoConv) folds every
            # BN into the bias-less conv before it: the file holds, per BN of C channels, one
            # conv bias of C instead of gamma, beta, mean and var (4C).
            bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
            assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
            entry["trainable"] = (counts["trainable"]
                                  - sum(m.weight.numel() + m.bias.numel() for m in bns)
                                  + sum(m.num_features for m in bns))
            entry["non_trainable"] = 0
        else:
            entry["trainable"] = counts["trainable"]
            entry["non_trainable"] = counts["non_trainable"]
        for batch in BATCHES:
            torch.manual_seed(1)
            y, macs, tmacs = hooked_forward(model, torch.randn(batch, 3, size, size))
            entry["outputs"][str(batch)] = list(y.shape)
            entry["conv_linear_macs"][str(batch)] = sum(macs.values())
            entry["conv_transpose_macs"][str(batch)] = sum(tmacs.values())
            if batch == 1:
                # The dynamo exporter's node names carry no module scope (node_Conv_292).
                entry["blocks"] = None if folded else block_subtotals(model, macs)
                entry["probe"] = probe(model, (1, 3, size, size))
        try:
            export(model, torch.randn(1, 3, size, size), path, opset, exporter)
        except Exception as e:  # only the dynamo exporter is optional
            if exporter != "dynamo":
                raise
            print(f"skip {stem}: dynamo export failed: {type(e).__name__}: {e}",
                  file=sys.stderr)
            if os.path.exists(path):
                os.remove(path)
            continue
        with_params = {n for n, m in model.named_modules() if any(True for _ in m.parameters())}
        check_file(path, counts, folded, None if folded else scope_paths(model), with_params)
        entry["bytes"] = os.path.getsize(path)
        expected[f"{stem}.onnx"] = entry
        print(f"{stem}.onnx: {entry['bytes']} bytes, trainable {entry['trainable']}, "
              f"non-trainable {entry['non_trainable']}, out {entry['outputs']}, "
              f"MACs {entry['conv_linear_macs']} (+convT {entry['conv_transpose_macs']})")
    meta = {"torch": torch.__version__,
            "note": "made by tests/data/make_models.py; numbers from torch, not from the files"}
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"_meta": meta, "files": expected}, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
