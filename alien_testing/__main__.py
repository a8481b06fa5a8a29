"""``python -m alien_testing``: a local mothership (nats-server + emulator) in the foreground.

Everything listens on 127.0.0.1. Runs until Ctrl-C or SIGTERM, then stops both and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from alien_testing.emulator import DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, MothershipEmulator
from alien_testing.emulator.contract import DIALECTS, RELEASES
from alien_testing.nats_server import NatsServer, NatsServerError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m alien_testing", description=__doc__)
    parser.add_argument("--dialect", choices=DIALECTS, default="v0.0.1", help="REST dialect (default v0.0.1)")
    parser.add_argument(
        "--release", choices=RELEASES, default="v0.1.1", help="v0.1 server line: v0.1.1 or rc (default v0.1.1)"
    )
    parser.add_argument("--nats-port", type=int, default=0, help="NATS client port, 0 = a free port")
    parser.add_argument("--http-port", type=int, default=0, help="REST port, 0 = a free port")
    parser.add_argument("--store-dir", default=None, help="keep JetStream data here (default: temporary)")
    parser.add_argument(
        "--no-command-processor", action="store_true", help="do not run the server's command-processor consumer"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    nats_server = NatsServer(args.store_dir, port=args.nats_port or None)
    try:
        nats_server.start()
    except NatsServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dialect == "v0.0.1" and args.release != "v0.1.1":
        print("error: --release needs --dialect v0.1", file=sys.stderr)
        nats_server.stop()
        return 2
    emulator = MothershipEmulator(
        nats_server.url,
        dialect=args.dialect,
        release=args.release,
        port=args.http_port,
        command_processor=not args.no_command_processor,
    )
    try:
        emulator.start()
        line = args.dialect if args.dialect == "v0.0.1" else f"{args.dialect}, release {args.release}"
        print(f"mothership emulator ({line}): {emulator.url}")
        print(f"NATS (JetStream domain constellation, no auth): {nats_server.url}")
        if args.dialect == "v0.0.1":
            print(f"dev bearer token: {DEFAULT_BEARER_TOKEN}")
        else:
            print(f"dev API key (admin): {DEFAULT_API_KEY}")
        print("Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):  # the timeout keeps signal delivery prompt on every platform
            pass
    finally:
        emulator.stop()
        nats_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
