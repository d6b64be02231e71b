"""Reading files that may be hostile: regular files only, sizes checked before reading, JSON
with bounded size and nesting.

A path can name ``/dev/zero`` (endless), a FIFO (blocks forever on open) or a terabyte file;
JSON can nest deeply enough to exhaust Python's recursion limit. These helpers turn each of
those into the caller's one-line error before any byte is read or any recursion happens.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

#: Deepest JSON nesting accepted (policy metadata needs 4, log messages 3).
MAX_JSON_DEPTH = 64


def check_regular_file(
    path: str | os.PathLike[str], what: str, error: type[Exception], max_bytes: int | None = None
) -> int:
    """Return the size of ``path`` after checking it is a regular file of at most
    ``max_bytes`` (stat only: nothing is opened, so a FIFO cannot block).

    Raises:
        error: ``"<what> <path> does not exist"``, ``"... is not a regular file (a FIFO)"``,
            or ``"... is N bytes, more than the M bytes a <what> may have"``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory" if stat.S_ISDIR(st.st_mode)
            else "a FIFO" if stat.S_ISFIFO(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "not a file"
        )  # fmt: skip
        raise error(f"{what} {path} is not a regular file ({kind})")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(
            f"{what} {path} is {st.st_size} bytes, more than the {max_bytes} bytes a {what} "
            "may have"
        )
    return st.st_size


def read_bounded(
    path: str | os.PathLike[str], what: str, error: type[Exception], max_bytes: int
) -> bytes:
    """The bytes of regular file ``path`` (at most ``max_bytes``), see
    :func:`check_regular_file`; a file that grows meanwhile is refused too."""
    check_regular_file(path, what, error, max_bytes)
    try:
        with open(Path(path), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {path} grew past {max_bytes} bytes while being read")
    return data


def json_depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((v, depth) for v in item if isinstance(v, (dict, list)))
    return deepest


def loads_bounded(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that raises ``ValueError`` (never RecursionError) for JSON nested
    deeper than ``limit``; malformed JSON raises ``json.JSONDecodeError`` (a ValueError)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {limit} levels") from None
    if json_depth(value) > limit:
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return value
