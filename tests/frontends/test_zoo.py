"""The model zoo: every model compiles from its .cnn file and analyses; its trainable parameters
equal the published count cited in its own header (and its MACs the published figure, where one
is cited); BN running statistics are the only non-trainable parameters, 2 per BN channel; the
structure the papers describe (LeNet-5's layers, AlexNet's two GPUs, GoogLeNet's modules,
SE-ResNet-50's SE blocks); `cnngraph zoo`; the header parser; the packaging of models/*.cnn."""

import functools
import sys
from pathlib import Path

import pytest

import cnngraph
from cnngraph.cli import main
from cnngraph.errors import LoadError
from cnngraph.frontends import zoo

# The models the zoo must have (issue 3), with the input each is built for.
MODELS = {
    "lenet5": (1, 32), "alexnet": (3, 227), "vgg16": (3, 224), "googlenet": (3, 224),
    "resnet18": (3, 224), "resnet34": (3, 224), "resnet50": (3, 224), "resnet101": (3, 224),
    "resnet152": (3, 224), "se_resnet50": (3, 224), "xception": (3, 299),
    "mobilenet_v1": (3, 224), "mobilenet_v2": (3, 224), "densenet121": (3, 224),
    "squeezenet1_0": (3, 224),
}
WITHOUT_BN = {"lenet5", "alexnet", "vgg16", "googlenet", "squeezenet1_0"}
ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def analysed(name, batch=1):
    return cnngraph.analyze(zoo.load(name), batch=batch)


def shape(a, tensor):
    return a.shapes.types[tensor].shape


def block(a, name):
    found = [b for b in a.blocks if b.name == name]
    assert found, f"no block '{name}' in {a.graph.name}"
    return found[0]


# -- every model ----------------------------------------------------------------------------------
def test_names_are_sorted_and_hold_every_model():
    names = zoo.names()
    assert names == sorted(names)
    assert set(MODELS) <= set(names)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trainable_params_equal_the_published_count(name):
    a, pub = analysed(name), zoo.published(name)
    assert a.totals.trainable_params == pub.trainable, pub.source
    if pub.non_trainable is not None:
        assert a.totals.non_trainable_params == pub.non_trainable, pub.source
    if pub.gmacs is not None:
        assert pub.macs_match(a.totals.macs), (a.totals.macs, pub.gmacs, pub.source)
    assert pub.source.strip()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bn_running_statistics_are_the_only_non_trainable_params(name):
    a = analysed(name)
    bn = [layer for layer in a.layers if layer.op == "BatchNormalization"]
    assert bool(bn) == (name not in WITHOUT_BN)
    for layer in bn:
        channels = layer.output_shapes[0][1]
        assert layer.trainable_params == 2 * channels, layer.name  # scale and shift
        assert layer.non_trainable_params == 2 * channels, layer.name  # mean and variance
    assert a.totals.non_trainable_params == 2 * sum(layer.output_shapes[0][1] for layer in bn)
    assert all(layer.non_trainable_params == 0 for layer in a.layers if layer not in bn)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_output_and_name(name):
    a = analysed(name)
    channels, side = MODELS[name]
    (info,) = a.graph.inputs
    assert tuple(info.shape) == ("N", channels, side, side)  # a symbolic batch
    assert [shape(a, t) for t in a.graph.outputs] == [(1, 10 if name == "lenet5" else 1000)]
    assert a.graph.name == name  # the file's `network` statement matches its file name
    assert not a.uncounted


@pytest.mark.parametrize("name", ["lenet5", "googlenet", "resnet50", "mobilenet_v2"])
def test_batch_scales_activations_not_params(name):
    one, four = analysed(name), analysed(name, 4)
    assert [shape(four, t) for t in four.graph.outputs] == [(4, 10 if name == "lenet5" else 1000)]
    assert four.totals.params == one.totals.params
    assert four.totals.macs == 4 * one.totals.macs


# -- structure, against the papers ----------------------------------------------------------------
def test_lenet5_layers_as_the_paper_counts_them():
    a = analysed("lenet5")
    layers = {layer.name: layer for layer in a.layers}
    # LeCun et al. 1998, section II-B
    assert layers["c1"].params == 156 and shape(a, "c1") == (1, 6, 28, 28)
    assert block(a, "s2").params == 12 and shape(a, "s2/tanh") == (1, 6, 14, 14)
    assert block(a, "c3").params == 1516 and shape(a, "c3/tanh") == (1, 16, 10, 10)
    assert block(a, "s4").params == 32 and shape(a, "s4/tanh") == (1, 16, 5, 5)
    assert layers["c5"].params == 48120 and shape(a, "c5") == (1, 120, 1, 1)
    assert layers["f6"].params == 10164
    assert layers["output"].params == 84 * 10 + 10
    assert {layer.op for layer in a.layers} >= {"Tanh", "Gather", "AveragePool", "Mul"}
    assert "Relu" not in {layer.op for layer in a.layers}


def test_alexnet_splits_conv2_conv4_conv5_over_two_gpus():
    a = analysed("alexnet")
    layers = {layer.name: layer for layer in a.layers}
    assert shape(a, "conv1") == (1, 96, 55, 55) and layers["conv1"].params == 34944  # DOMAIN.md
    # groups=2: each filter reads half the maps: K * (kh*kw*Cin/2) + K
    assert layers["conv2"].params == 256 * 5 * 5 * 48 + 256
    assert layers["conv3"].params == 384 * 3 * 3 * 256 + 384  # reads both GPUs
    assert layers["conv4"].params == 384 * 3 * 3 * 192 + 384
    assert layers["conv5"].params == 256 * 3 * 3 * 192 + 256
    assert shape(a, "pool5") == (1, 256, 6, 6)
    assert sum(1 for layer in a.layers if layer.op == "LRN") == 2
    # the same network without groups: 62,378,344 (CaffeJS's count of the ungrouped prototxt)
    ungrouped = 256 * 5 * 5 * 48 + 384 * 3 * 3 * 192 + 256 * 3 * 3 * 192
    assert a.totals.trainable_params + ungrouped == 62378344


GOOGLENET_TABLE_1 = {  # Szegedy et al. 2014, Table 1: output size and channels
    "inception_3a": (28, 256), "inception_3b": (28, 480), "inception_4a": (14, 512),
    "inception_4b": (14, 512), "inception_4c": (14, 512), "inception_4d": (14, 528),
    "inception_4e": (14, 832), "inception_5a": (7, 832), "inception_5b": (7, 1024),
}


def test_googlenet_has_the_nine_inception_modules_of_table_1():
    a = analysed("googlenet")
    modules = [b.name for b in a.blocks if b.name.startswith("inception_")]
    assert modules == list(GOOGLENET_TABLE_1)
    for name, (side, channels) in GOOGLENET_TABLE_1.items():
        assert shape(a, f"{name}/output") == (1, channels, side, side)
        for branch in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool", "pool_proj"):
            assert f"{name}/{branch}" in a.graph.nodes, (name, branch)
    assert not any("aux" in n or n.startswith("loss1") for n in a.graph.nodes)  # no aux heads
    assert shape(a, "pool5") == (1, 1024, 1, 1)


def test_se_resnet50_is_resnet50_plus_one_se_block_per_unit():
    se, plain = analysed("se_resnet50"), analysed("resnet50")
    units = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    added = sum(n * (2 * c * (c // 16) + c // 16 + c) for c, n in units)
    assert added == 2530992
    assert se.totals.trainable_params == plain.totals.trainable_params + added
    assert se.totals.non_trainable_params == plain.totals.non_trainable_params
    se_blocks = [b.name for b in se.blocks if b.name.endswith("/se_module")]
    assert len(se_blocks) == 16
    assert sum(1 for layer in se.layers if layer.op == "Sigmoid") == 16


def test_resnet_stages_are_torchvisions():
    a = analysed("resnet50")
    assert [b.name for b in a.blocks if b.name.count("/") == 1][:4] == [
        "layer1/layer1.0", "layer1/layer1.1", "layer1/layer1.2", "layer2/layer2.0"]
    assert shape(a, "layer4/layer4.2/add_relu") == (1, 2048, 7, 7)
    downsamples = [b.name for b in a.blocks if b.name.endswith("/downsample")]
    assert downsamples == [f"layer{i}/layer{i}.0/downsample" for i in range(1, 5)]


def test_separable_models_use_depthwise_convs():
    for name, count in (("mobilenet_v1", 13), ("mobilenet_v2", 17), ("xception", 34)):
        a = analysed(name)
        depthwise = [n for n in a.graph.nodes.values() if n.op_type == "Conv"
                     and n.attrs.get("group", 1) > 1]
        assert len(depthwise) == count, name


# -- the command line -----------------------------------------------------------------------------
def test_cli_zoo_lists_every_model_with_its_params_and_macs(capsys):
    assert main(["zoo"]) == 0
    out, err = capsys.readouterr()
    assert not err
    rows = {line.split()[1]: line for line in out.splitlines()
            if len(line.split()) > 2 and line.split()[1] in zoo.names()}
    assert set(rows) == set(zoo.names())
    for name, line in rows.items():
        a = analysed(name)
        assert f"{a.totals.trainable_params:,}" in line, line
        assert f"{a.totals.non_trainable_params:,}" in line, line
        assert f"{a.totals.macs:,}" in line, line
        assert "(same)" in line and "DIFFERS" not in line, line


# -- resolve, published, load ---------------------------------------------------------------------
def test_resolve_gives_the_file_or_none():
    path = zoo.resolve("resnet50")
    assert path is not None and Path(path).name == "resnet50.cnn" and Path(path).is_file()
    for bad in ("no_such_net", "", "../pyproject", "resnet50.cnn", "models/resnet50", None, 3):
        assert zoo.resolve(bad) is None, bad


def test_unknown_names_fail_with_the_list_of_models():
    for call in (zoo.published, zoo.load):
        with pytest.raises(LoadError, match="no such model in the zoo.*resnet50"):
            call("resnet5")


@pytest.mark.parametrize("text, expected", [
    ('trainable=60850 source="LeCun et al. 1998"', zoo.Published(60850, "LeCun et al. 1998")),
    ('  trainable=1_000 non_trainable=20 gmacs=0.50 source="a, b = c" ',
     zoo.Published(1000, "a, b = c", 20, "0.50")),
])
def test_published_header_parses(text, expected):
    assert zoo._parse_header(text, "m.cnn:1") == expected


@pytest.mark.parametrize("text, fragment", [
    ('source="x"', "lacks trainable"),
    ("trainable=5", "lacks source"),
    ('trainable=5 trainable=6 source="x"', "'trainable' is given twice"),
    ('trainable=5 params=6 source="x"', "'params=6' is not one of"),
    ('trainable=5.5 source="x"', "is not one of"),
    ('trainable=5 source=x', "cannot read"),
    ('trainable=5 source="x', "cannot read"),
    ("trainable=60,850 source=\"x\"", "cannot read"),
])
def test_published_header_errors(text, fragment):
    with pytest.raises(LoadError, match="m.cnn:1: ") as e:
        zoo._parse_header(text, "m.cnn:1")
    assert fragment in str(e.value)


def test_published_comes_from_the_leading_comment_only(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "_directory", lambda: tmp_path)
    (tmp_path / "good.cnn").write_text(
        '# a model\n\n# published: trainable=7 source="here"\ninput x: 1x3x8x8\nconv(4, 3)\n')
    (tmp_path / "late.cnn").write_text(
        'input x: 1x3x8x8\n# published: trainable=7 source="too late"\nconv(4, 3)\n')
    (tmp_path / "notes.txt").write_text("not a model")
    assert zoo.names() == ["good", "late"]
    assert zoo.published("good") == zoo.Published(7, "here")
    with pytest.raises(LoadError, match="late.cnn: no '# published"):
        zoo.published("late")
    assert cnngraph.analyze(zoo.load("good")).totals.params == 4 * 27 + 4


def test_macs_match_uses_the_published_rounding():
    pub = zoo.Published(1, "x", gmacs="15.47")
    assert pub.macs_match(15_470_264_320) and not pub.macs_match(15_480_000_000)
    assert zoo.Published(1, "x").macs_match(5) is None


# -- packaging ------------------------------------------------------------------------------------
def test_pyproject_ships_every_package_and_the_zoo():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {".".join(p.parent.relative_to(ROOT).parts)
                for p in (ROOT / "cnngraph").rglob("__init__.py")}
    assert set(config["packages"]) == packages | {"cnngraph.models"}
    assert config["package-dir"] == {"cnngraph.models": "models"}
    assert config["package-data"]["cnngraph.models"] == ["*.cnn"]
    assert {p.stem for p in (ROOT / "models").glob("*.cnn")} == set(zoo.names())


def test_every_model_file_cites_its_source_in_the_readme():
    readme = (ROOT / "models" / "README.md").read_text()
    for name in zoo.names():
        assert f"`{name}`" in readme, name
        pub = zoo.published(name)
        assert f"{pub.trainable:,}" in readme, name
