"""``python -m alien_testing``: a local mothership (nats-server + emulator) in the foreground.

Everything listens on 127.0.0.1. Runs until Ctrl-C or SIGTERM, then stops both and exits 0.
``--cluster N`` runs N routed nats-servers instead of one (streams and KV with min(N, 3)
replicas); lines such as ``kill 2`` / ``stop 2`` / ``start 2`` / ``status`` on stdin drive the
nodes, for fault drills by hand.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from alien_testing.emulator import DEFAULT_API_KEY, DEFAULT_BEARER_TOKEN, MothershipEmulator
from alien_testing.emulator.contract import DIALECTS, RELEASES
from alien_testing.nats_cluster import NatsCluster
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
    parser.add_argument(
        "--cluster", type=int, default=0, metavar="N", help="N routed nats-servers (a NATS cluster) instead of one"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.dialect == "v0.0.1" and args.release != "v0.1.1":
        print("error: --release needs --dialect v0.1", file=sys.stderr)
        return 2
    if args.cluster and args.nats_port:
        print("error: --nats-port is for one server; a --cluster picks free ports", file=sys.stderr)
        return 2
    nats: NatsServer | NatsCluster = (
        NatsCluster(args.cluster, args.store_dir)
        if args.cluster
        else NatsServer(args.store_dir, port=args.nats_port or None)
    )
    try:
        nats.start()
    except NatsServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    emulator = MothershipEmulator(
        nats.url,
        dialect=args.dialect,
        release=args.release,
        port=args.http_port,
        command_processor=not args.no_command_processor,
        replicas=min(args.cluster, 3) if args.cluster else 1,
    )
    try:
        emulator.start()
        line = args.dialect if args.dialect == "v0.0.1" else f"{args.dialect}, release {args.release}"
        print(f"mothership emulator ({line}): {emulator.url}")
        print(f"NATS (JetStream domain constellation, no auth): {nats.url}")
        if isinstance(nats, NatsCluster):
            for number, node in enumerate(nats.nodes, 1):
                print(f"  node {number}: {node.url} ({node.server_name}, pid {node.pid})")
            print("drive the nodes with lines on stdin: kill N, stop N, start N, status")
        if args.dialect == "v0.0.1":
            print(f"dev bearer token: {DEFAULT_BEARER_TOKEN}")
        else:
            print(f"dev API key (admin): {DEFAULT_API_KEY}")
        print("Ctrl-C to stop", flush=True)
        if isinstance(nats, NatsCluster):
            threading.Thread(target=_drive_nodes, args=(nats,), daemon=True, name="node-commands").start()
        while not stop.wait(1.0):  # the timeout keeps signal delivery prompt on every platform
            pass
    finally:
        emulator.stop()
        nats.stop()
    return 0


def _drive_nodes(cluster: NatsCluster) -> None:
    """Fault drills by hand: `kill 2` (SIGKILL), `stop 2` (SIGTERM), `start 2`, `status`, one per line."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ["status"]:
            for number, node in enumerate(cluster.nodes, 1):
                print(f"  node {number}: {node.url} {'running' if node.running else 'down'}", flush=True)
            continue
        if len(words) != 2 or words[0] not in ("kill", "stop", "start") or not words[1].isdigit():
            print(f"? {line.strip()!r}: use kill N, stop N, start N or status", flush=True)
            continue
        if not 1 <= int(words[1]) <= len(cluster.nodes):
            print(f"? no node {words[1]}: the nodes are 1 to {len(cluster.nodes)}", flush=True)
            continue
        node = cluster.nodes[int(words[1]) - 1]
        try:
            {"kill": node.kill, "stop": node.stop, "start": node.start}[words[0]]()
        except NatsServerError as exc:
            print(f"node {words[1]}: {exc}", flush=True)
        print(f"node {words[1]} ({node.server_name}): {'running' if node.running else 'down'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
