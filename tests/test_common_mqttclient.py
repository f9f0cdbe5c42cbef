"""The one paho client factory: reconnect policy rounding and the session choice, as a table."""

from __future__ import annotations

import pytest

from common.mqttclient import AUTH_FAILURES, new_client, reconnect_delays
from common.settings import MqttSettings


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.0, 60.0, (1, 60)),
        (0.2, 0.5, (1, 1)),  # sub-second settings never hammer the broker
        (1.5, 2.5, (2, 3)),  # rounded up, the same on both sides (one side used to truncate)
        (30.0, 10.0, (30, 30)),  # a max below the min is raised to it
    ],
)
def test_reconnect_delays(low: float, high: float, expected: tuple[int, int]) -> None:
    assert reconnect_delays(MqttSettings(reconnect_min_s=low, reconnect_max_s=high)) == expected


@pytest.mark.parametrize(
    ("protocol", "persistent"), [("5", False), ("5", True), ("3.1.1", False), ("3.1.1", True)]
)
def test_new_client_is_configured_and_unconnected(protocol: str, persistent: bool) -> None:
    settings = MqttSettings(protocol=protocol, username="n1", reconnect_min_s=2, reconnect_max_s=8)
    client = new_client(settings, "cid", persistent=persistent)
    assert not client.is_connected()
    assert client._reconnect_min_delay == 2 and client._reconnect_max_delay == 8
    if protocol == "3.1.1":
        assert client._clean_session is (not persistent)
    assert client.username == "n1"


def test_auth_failures_cover_both_protocols() -> None:
    assert {0x86, 0x87, 4, 5} <= AUTH_FAILURES and 0x80 not in AUTH_FAILURES


def test_missing_password_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RW_NO_SUCH_PW", raising=False)
    settings = MqttSettings.model_validate({"username": "n1", "password": {"env": "RW_NO_SUCH_PW"}})
    with pytest.raises(ValueError, match="RW_NO_SUCH_PW"):
        new_client(settings, "cid")
