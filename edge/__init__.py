"""Roadwatch edge node: camera streams -> ONNX detection -> tracking -> rules -> events over MQTT."""

__version__ = "0.1.0"
