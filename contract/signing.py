"""What a node signs: the canonical bytes of an event payload (wire contract v1).

The node signs and the station verifies these exact bytes, so they are defined once, here: the payload
without its `sig` field, keys sorted, no spaces, UTF-8, no NaN. The signature covers the snapshot's
sha256 too, which binds the picture to the event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SIG_KEY = "sig"


def canonical(payload: Mapping[str, Any]) -> bytes:
    """The signed bytes: the payload without `sig`, sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in payload.items() if k != SIG_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")
