"""The model zoo: classic networks written in the DSL, shipped inside the package.

The ``.cnn`` files live in the repository's top-level ``models/`` folder, which the package
installs as ``cnngraph/models`` (``pip install .``); an editable install (``pip install -e .``)
reads them from the checkout. Each file opens with a comment header that cites the published
parameter count of the network it builds, so the number lives in one place, beside the model::

    # published: trainable=25557032 source="torchvision ResNet50_Weights ... num_params"

Keys: ``trainable`` (required), ``non_trainable`` (where the source publishes it, e.g. Keras'
BN moving statistics), ``gmacs`` (where the source publishes the multiply-accumulates, in
billions, rounded as published: torchvision's "GFLOPS" column counts multiply-adds),
``source`` (required: where the figures are published). Integers are plain digits (``_``
separators allowed); strings are in double quotes.

>>> "resnet50" in names()
True
>>> published("resnet50").trainable
25557032
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

from ..errors import LoadError

SUFFIX = ".cnn"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_HEADER = re.compile(r"#\s*published:(.*)")
_PAIR = re.compile(r'\s*([a-z_]+)=(?:"([^"]*)"|([0-9][0-9_]*(?:\.[0-9]+)?))(?=\s|\Z)')
_INT_KEYS = ("trainable", "non_trainable")
_FLOAT_KEYS = ("gmacs",)
_STR_KEYS = ("source",)


@dataclass(frozen=True)
class Published:
    """A zoo model's published parameter counts and where they are published."""

    trainable: int
    source: str
    non_trainable: Optional[int] = None
    gmacs: Optional[str] = None  # as published ("4.089"): its digits say how it was rounded

    def macs_match(self, macs: int) -> Optional[bool]:
        """Whether ``macs`` rounds to the published figure (None if none is published).

        >>> Published(1, "x", gmacs="4.089").macs_match(4_089_184_256)
        True
        """
        if self.gmacs is None:
            return None
        decimals = len(self.gmacs.partition(".")[2])
        return f"{macs / 1e9:.{decimals}f}" == self.gmacs


def _directory() -> Optional[Path]:
    """The folder that holds the zoo's .cnn files, or None if there is none."""
    try:
        # Installed: package data at cnngraph/models/.
        packaged = resources.files("cnngraph").joinpath("models")
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError, NotADirectoryError):  # pragma: no cover
        pass
    # Editable install or a plain checkout: cnngraph/ sits beside models/ and pyproject.toml.
    root = Path(__file__).resolve().parents[2]
    if (root / "models").is_dir() and (root / "pyproject.toml").is_file():
        return root / "models"
    return None  # pragma: no cover - a broken install


def names() -> list[str]:
    """The zoo's model names, sorted.

    >>> names()[:3]
    ['alexnet', 'densenet121', 'googlenet']
    """
    folder = _directory()
    if folder is None:  # pragma: no cover
        return []
    return sorted(p.name[:-len(SUFFIX)] for p in folder.iterdir()
                  if p.name.endswith(SUFFIX) and p.is_file()
                  and _NAME.match(p.name[:-len(SUFFIX)]))


def resolve(name: str) -> Optional[str]:
    """The path of zoo model ``name``'s .cnn file, or None if the zoo has no such model.

    >>> resolve("googlenet").endswith("googlenet.cnn"), resolve("no-such-net")
    (True, None)
    """
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    folder = _directory()
    if folder is None:  # pragma: no cover
        return None
    path = folder / (name + SUFFIX)
    return str(path) if path.is_file() else None


def _path(name: str) -> str:
    path = resolve(name)
    if path is None:
        raise LoadError(f"{name}: no such model in the zoo (models: {', '.join(names())})")
    return path


def published(name: str) -> Published:
    """The published counts cited in zoo model ``name``'s header.

    >>> p = published("xception"); p.trainable, p.non_trainable
    (22855952, 54528)
    """
    path = _path(name)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                break  # the header is the comment block before the first statement
            m = _HEADER.match(line)
            if m:
                return _parse_header(m.group(1), f"{path}:{number}")
    raise LoadError(f"{path}: no '# published: trainable=N source=\"...\"' line in the header "
                    f"comment")


def _parse_header(text: str, where: str) -> Published:
    fields: dict = {}
    pos = 0
    while pos < len(text.rstrip()):
        m = _PAIR.match(text, pos)
        if not m:
            raise LoadError(f"{where}: cannot read the published header at "
                            f"'{text[pos:].strip()[:40]}' (expected key=123 or key=\"text\")")
        key, string, integer = m.groups()
        if key in fields:
            raise LoadError(f"{where}: '{key}' is given twice in the published header")
        if key in _INT_KEYS and integer is not None and "." not in integer:
            fields[key] = int(integer.replace("_", ""))
        elif key in _FLOAT_KEYS and integer is not None:
            fields[key] = integer.replace("_", "")
        elif key in _STR_KEYS and string is not None:
            fields[key] = string
        else:
            known = ", ".join([f"{k}=N" for k in _INT_KEYS] + [f"{k}=N.N" for k in _FLOAT_KEYS]
                              + [f'{k}="..."' for k in _STR_KEYS])
            raise LoadError(f"{where}: '{m.group(0).strip()}' is not one of {known}")
        pos = m.end()
    missing = [k for k in ("trainable", "source") if k not in fields]
    if missing:
        raise LoadError(f"{where}: the published header lacks {' and '.join(missing)}")
    return Published(**fields)


def load(name: str):
    """Zoo model ``name`` as a Graph (compiled from its .cnn file by the DSL)."""
    from .dsl import load_dsl

    return load_dsl(_path(name))


__all__ = ["Published", "names", "resolve", "published", "load"]
