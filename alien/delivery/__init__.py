"""Delivery: what leaves the device, and that nothing is lost (docs/delivery.md).

- `outbox`: the bounded queue every outgoing message waits in, with lanes and drop counts;
- `outbox_store`: the outbox on SQLite, so messages survive a restart or a power cut;
- `publisher`: drains the outbox into JetStream with a stable `Nats-Msg-Id`, acknowledged before removal.
"""
