"""safe_json's nesting scan agrees with a plain tokenizer, across chunk boundaries and escapes."""
from __future__ import annotations

import json
import random

import pytest

import core.safe_json as safe_json
from core.safe_json import DataFormatError, max_nesting, parse_json


def reference_depth(text: str) -> int:
    """Character-by-character bracket depth outside strings (the obvious, slow way)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def random_value(rng: random.Random, depth: int = 0):
    pick = rng.random()
    if depth > 6 or pick < 0.3:
        return rng.choice(['a"b', "x\\", '\\\\"', "[{", "}]", "é[", 1, 2.5, None,
                           "".join(rng.choice('\\"[]{}ab') for _ in range(rng.randint(0, 8)))])
    if pick < 0.65:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {str(random_value(rng, 7)): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("chunk", [3, 7, 1 << 22])
def test_nesting_matches_a_plain_tokenizer(monkeypatch, chunk):
    monkeypatch.setattr(safe_json, "_CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(600):
        text = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5)
        assert max_nesting(text.encode("utf-8")) == reference_depth(text), text


def test_deep_nesting_is_refused_with_the_file_name():
    with pytest.raises(DataFormatError, match=r"deep\.json: JSON nested 100 levels"):
        parse_json(b"[" * 100 + b"]" * 100, "deep.json")
    assert parse_json(b'["[[[[", {"a": "\\\\"}]', "ok.json") == ["[[[[", {"a": "\\"}]
