"""decode_json takes the fast parser's result where it has one and the standard library's word where it
refuses: the same objects and the same rejection reasons as json.loads alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.validate import Rejection, decode_json

# (case, payload, the reason it is refused, or None when accepted)
CASES: list[tuple[str, bytes, str | None]] = [
    ("event-like", '{"v":1,"texts":{"vi":"Xe máy qua vạch"},"box":[1.5,2.0],"n":-0.0}'.encode(), None),
    ("spaces", b' \n{ "v" : 1 , "a" : [ ] } \n', None),
    ("duplicate-key-last-wins", b'{"v":1,"a":1,"a":2}', None),
    ("big-int", b'{"v":1,"n":123456789012345678901234567890}', None),
    ("float-precision", b'{"v":1,"f":0.1,"g":1.7976931348623157e308,"h":5e-324}', None),
    ("lone-surrogate-escape", b'{"v":1,"s":"\\ud800"}', None),
    ("overflow-to-inf", b'{"v":1,"f":1e999}', None),
    ("nan", b'{"v":1,"f":NaN}', "non_finite"),
    ("infinity", b'{"v":1,"f":-Infinity}', "non_finite"),
    ("not-utf8", b'{"v":1,"s":"\xff"}', "not_utf8"),
    ("bom", b'\xef\xbb\xbf{"v":1}', "not_json"),
    ("truncated", b'{"v":1,', "not_json"),
    ("trailing-garbage", b'{"v":1} x', "not_json"),
    ("deep", b'{"v":1,"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "not_json"),
    ("array", b"[1]", "not_object"),
    ("string", b'"v"', "not_object"),
    ("no-version", b'{"a":1}', "unknown_version"),
    ("bool-version", b'{"v":true}', "unknown_version"),
]


def reference(payload: bytes) -> Any:
    return json.loads(payload.decode("utf-8"))


@pytest.mark.parametrize(("payload", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_json_matches_the_standard_parser(payload: bytes, reason: str | None) -> None:
    got = decode_json(payload)
    if reason is None:
        assert not isinstance(got, Rejection)
        assert json.dumps(got) == json.dumps(reference(payload))  # same values, keys, order and floats
    else:
        assert isinstance(got, Rejection) and got.reason == reason
