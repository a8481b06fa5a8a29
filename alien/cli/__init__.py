"""`alien` command line (also `python -m alien`); one module per command group.

- `register`: register this device (or reuse the saved ids) and print them as JSON.
- `status [--json] [--timeout S]`: identity, mothership dialect and health, NATS and JetStream
  (streams), and the durable outbox's counters, read without sending anything.
- `send-command --type T [--params JSON] [--seed-file F] ...`: send a command (signed with a
  seed file) and print its lifecycle events until the final one.
- `tail [--org-id O] [--entity-id E] [--json] [--count N] [--timeout S]`: telemetry and events.
- `simulate --entities N [--duration S] [--interval S]`: a fleet over one NATS connection.
- `metrics [URL] [--interval S] [--json]`: a metrics endpoint in short (rates, outbox, latencies).
- `keys generate [--out F]`, `keys public --seed-file F`, `sign ...`: operator signing keys.
- `firmware upload FILE --version V --seed-file F (--entity-id E | --entity-type T)...`, `firmware list`:
  firmware files with signed manifests in a JetStream object store bucket.

Settings come from the environment and `.env`, as for the library. Errors are one line on
stderr, `alien: <what went wrong>; <what to do>`, never with a secret. Exit codes (common.py):
0 ok, 1 the mothership or NATS unreachable or refused (`register` too when saved ids exist: they
were not checked; `metrics`: the endpoint does not answer), 2 usage / configuration / identity or
key file / a MOTHERSHIP_URL that does not answer HTTP / an answer that is no metrics endpoint,
3 command rejected, 4 command failed, 5 timeout (no final event, tail --count not reached,
simulate not fully acknowledged), 130 interrupted.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_EXIT_INTERRUPTED = 130  # common.EXIT_INTERRUPTED; common itself imports the library


def main(argv: list[str] | None = None) -> int:
    # Importing the library (aiohttp, nats) takes half a second: a Ctrl-C then is still one line.
    try:
        from alien.cli.app import run

        return run(argv)
    except KeyboardInterrupt:
        print("alien: interrupted", file=sys.stderr, flush=True)
        return _EXIT_INTERRUPTED
