"""Transport stage: the wire format, the durable outbox, the MQTT publisher, station commands, stats."""
