"""The README's DSL example compiles, and its inception blocks hold what the formula says."""

import os
import re

import cnngraph
from cnngraph.frontends.dsl import parse_dsl

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_readme_dsl_example():
    (text,) = re.findall(r"```cnn\n(.*?)```", open(README, encoding="utf-8").read(), re.S)
    a = cnngraph.analyze(parse_dsl(text, "README.md"))
    blocks = {b.name: b for b in a.blocks}
    # inception_3a: 1x1 64; 1x1 96 -> 3x3 128; 1x1 16 -> 5x5 32; pool -> 1x1 32
    # (the stem here has no conv2, so the module reads conv1's 64 maps)
    cin = 64
    want = (cin * 64 + 64) + (cin * 96 + 96) + (96 * 9 * 128 + 128) + (cin * 16 + 16) + \
        (16 * 25 * 32 + 32) + (cin * 32 + 32)
    assert blocks["inception_3a"].params == want
    assert a.layers[-1].output_shapes == ((1, 1000),)
