"""Small networks that exercise every compile pass and most kernels, quick to export and run."""

from __future__ import annotations

import functools
import tracemalloc

import cnngraph
from cnngraph.execute import random_weights


def mixed_net(batch="N", size=20):
    """conv + BN + relu, a projection residual unit, a depthwise conv with relu6, an inception
    style concat, LRN, pooling with ceil mode and padding, dropout, dense, softmax."""
    net = cnngraph.Network("mixed")
    x = net.input("x", (batch, 3, size, size))
    y = net.batchnorm(net.conv(x, 8, 3, padding="same", bias=False), activation="relu")
    y = net.max_pool(y, 3, stride=2, padding=1)
    shortcut = net.conv(y, 12, 1, stride=2, bias=False)
    r = net.batchnorm(net.conv(y, 12, 3, stride=2, padding=1), activation="relu")
    r = net.batchnorm(net.conv(r, 12, 3, padding=1))
    y = net.add(r, shortcut, activation="relu")
    y = net.depthwise_conv(y, 3, padding="same", activation="relu6")
    y = net.lrn(y, size=3)
    a = net.conv(y, 6, 1, activation="relu")
    b = net.conv(net.conv(y, 4, 1, activation="relu"), 6, 3, padding="same",
                 activation="sigmoid")
    c = net.conv(net.avg_pool(y, 3, stride=1, padding=1), 4, 1)
    y = net.concat([a, b, c])
    y = net.avg_pool(y, 2, stride=2, ceil_mode=True)
    y = net.dropout(net.global_avg_pool(y))
    net.output(net.softmax(net.dense(net.flatten(y), 5)))
    return net.build()


@functools.lru_cache(maxsize=None)
def mixed_weighted():
    return random_weights(mixed_net(), seed=3)


def allocated_by_run(compiled) -> tuple[int, int]:
    """(bytes still allocated after, peak bytes allocated during) a second run of
    ``compiled`` (inputs already bound), beside its arena: tracemalloc's count."""
    compiled.execute()
    tracemalloc.start()
    try:
        compiled.execute()
        return tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
