"""The paho-mqtt 2 client factory of the node and the aggregator: one reconnect policy, one TLS set-up.

Both sides used to build their clients by hand and had drifted (one truncated the reconnect delay to whole
seconds, the other rounded it up). Here: the protocol from the settings, credentials from `SecretRef`,
TLS with certificate checks, and a reconnect delay that doubles from `reconnect_min_s` to
`reconnect_max_s`, rounded up to whole seconds (paho's unit; never under 1 s, so a dead broker is not
hammered). Callbacks and the connect call stay with the caller: they are what differs.
"""

from __future__ import annotations

import math
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.settings import MqttSettings

# CONNACK reasons that a retry cannot fix: 0x86 bad user name or password, 0x87 not authorized,
# 0x8C bad authentication method; 4 and 5 are the MQTT 3.1.1 return codes for the first two.
AUTH_FAILURES = frozenset({0x86, 0x87, 0x8C, 4, 5})


def reconnect_delays(settings: MqttSettings) -> tuple[int, int]:
    """(min, max) reconnect delay in whole seconds, rounded up, at least 1."""
    low = max(1, math.ceil(settings.reconnect_min_s))
    return low, max(low, math.ceil(settings.reconnect_max_s))


def new_client(
    settings: MqttSettings,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A configured, unconnected client. `persistent` keeps the broker session across reconnects (MQTT 5:
    the caller sets clean_start and the expiry at connect; 3.1.1: clean_session=False).

    Raises ValueError when the password source is missing (the caller reports it as a config problem).
    """
    v5 = settings.protocol == "5"
    client = client_class(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.username is not None:
        password = settings.password.resolve() if settings.password is not None else None
        client.username_pw_set(settings.username, password)
    if settings.tls is not None:
        client.tls_set(
            ca_certs=settings.tls.ca_file,
            certfile=settings.tls.cert_file,
            keyfile=settings.tls.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        client.tls_insecure_set(settings.tls.insecure)
    client.reconnect_delay_set(*reconnect_delays(settings))
    return client
