"""Reading untrusted JSON files: size, depth, number and item limits, and typed field access.

Every failure raises `DataFormatError` whose message names the file and what is wrong, so a
hostile or damaged file is rejected cleanly instead of crashing or exhausting memory.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from core.errors import CutTreeError

MAX_JSON_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 18


class DataFormatError(CutTreeError):
    """A file's content is not what it should be; the message names the file and the problem."""


def load_json(path: Union[str, Path], max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON file, refusing oversize files, deep nesting, huge numbers and NaN/Infinity."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DataFormatError(f"{path}: file is {size} bytes, more than the {max_bytes} allowed")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return parse_json(raw, str(path), max_depth)


def parse_json(raw: bytes, name: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON bytes (see `load_json`); `name` is used in error messages."""
    depth = max_nesting(raw)
    if depth > max_depth:
        raise DataFormatError(f"{name}: JSON nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    del raw
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:
        raise DataFormatError(f"{name}: {exc}") from exc


_CHUNK = 1 << 22
_QUOTE = ord('"')
_STEP = np.zeros(256, np.int8)          # +1 opens, -1 closes a bracket
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_OTHERS = bytes(b for b in range(256) if _STEP[b] == 0 and b != _QUOTE)


def max_nesting(raw: bytes) -> int:
    """Deepest bracket nesting outside strings, without recursion, at a fraction of `json.loads`.

    On the UTF-8 bytes (quotes, backslashes and brackets never occur inside a multi-byte
    character): escaped backslashes, then escaped quotes are removed (`bytes.replace` pairs a run
    of backslashes from its start, as the JSON tokenizer does), every byte but quotes and
    brackets is dropped (`bytes.translate`), and what is left is scanned 4 MiB at a time.
    """
    if b"[" not in raw and b"{" not in raw:
        return 0
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    view = np.frombuffer(raw.translate(None, _OTHERS), dtype=np.uint8)
    deepest = depth = 0
    in_string = False
    for start in range(0, len(view), _CHUNK):
        codes = view[start:start + _CHUNK]
        quote = codes == _QUOTE
        inside = (np.cumsum(quote, dtype=np.int64) + in_string) % 2 == 1     # true on opening quotes too
        step = _STEP[codes].astype(np.int64)
        step[inside] = 0
        running = np.cumsum(step) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
        in_string = bool(inside[-1])
    return deepest


def _parse_int(token: str) -> int:
    if len(token.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer with {len(token)} digits is too large")
    return int(token)


def _parse_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"number {token[:20]} is out of range")
    return value


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not allowed")


class Fields:
    """Typed access to one JSON object; errors name the file and the object's location."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise DataFormatError(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj = obj
        self.where = where

    def has(self, key: str) -> bool:
        return key in self.obj

    def error(self, message: str) -> DataFormatError:
        return DataFormatError(f"{self.where}: {message}")

    def int(self, key: str, lo: int = -(2 ** 62), hi: int = 2 ** 62, default: Optional[int] = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be an integer, got {_show(value)}")
        if not lo <= value <= hi:
            raise self.error(f"'{key}'={value} is outside [{lo}, {hi}]")
        return value

    def number(self, key: str, default: Optional[float] = None) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"'{key}' must be a number, got {_show(value)}")
        return float(value)

    def str(self, key: str, default: Optional[str] = None, max_len: int = 4096) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(f"'{key}' must be a string, got {_show(value)}")
        if len(value) > max_len:
            raise self.error(f"'{key}' is {len(value)} characters long, more than {max_len}")
        return value

    def bool(self, key: str, default: Optional[bool] = None) -> bool:
        value = self._get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, got {_show(value)}")
        return value

    def list(self, key: str, default: Optional[list] = None, max_len: int = 10_000_000) -> list:
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be a list, got {_show(value)}")
        if len(value) > max_len:
            raise self.error(f"'{key}' has {len(value)} items, more than {max_len}")
        return value

    def dict(self, key: str, default: Optional[dict] = None) -> dict:
        value = self._get(key, default)
        if not isinstance(value, dict):
            raise self.error(f"'{key}' must be an object, got {_show(value)}")
        return value

    def _get(self, key: str, default: Any) -> Any:
        if key in self.obj:
            return self.obj[key]
        if default is None:
            raise self.error(f"'{key}' is missing")
        return default


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (set, bytes)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
