"""Plumbing both the edge node and the station need: sd_notify, YAML loading with field-path error lines,
secret/TLS/MQTT settings, the Prometheus metrics endpoint and the paho client factory.

One copy each, so the two sides cannot drift apart; this package imports neither `edge` nor `central`.
"""
