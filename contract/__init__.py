"""The MQTT wire contract v1 between an edge node and the station: the one home of the wire format.

Topics, event kinds with their display labels, phases, node and stream states, size limits and the
payload and command models live here and nowhere else. `edge` builds its payloads with these limits,
`central` validates what it receives with these models, the JSON Schemas in `contract/schemas/` are
generated from them and the dashboard reads the kind labels from an API endpoint fed by `kinds`.
This package imports neither `edge` nor `central`, so either side can depend on it.
"""
