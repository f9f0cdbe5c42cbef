"""Capture stage: camera sources and their URLs, the motion gate, camera health."""
