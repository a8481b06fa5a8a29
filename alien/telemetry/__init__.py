"""Telemetry, from a reading to the bytes the server decodes (docs/architecture.md#data-flow).

- `readings`: reading and lifecycle payload builders (`position`, the seed shapes);
- `channels`: per-topic rate policies between a caller's thread and the client's loop;
- `composer`: a reading encoded once, when the ids are known, or held as a reading until then;
- `wire_format`: which format the server takes (configured, or by its dialect);
- `encoders`: one encoder per format (seed JSON, MAVLink, envelope_v1);
- `mavlink`, `mavlink_power`, `mavlink_fields`: the MAVLink messages the v0.1 servers decode.
"""
