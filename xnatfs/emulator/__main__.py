"""``xnatfs emulator`` / ``python -m xnatfs.emulator``: run the XNAT emulator in the foreground.

Prints exactly one line, ``XNAT emulator ready at http://HOST:PORT``, once it accepts connections
(the real port when ``--port 0``), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from xnatfs.emulator.faults import FaultSettings


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xnatfs emulator", description="Run an XNAT-compatible REST server.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves other machines too)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    parser.add_argument("--data", help="data directory (SQLite + files); a temporary one when omitted")
    parser.add_argument("--sample", action="store_true", help="fill an empty archive with sample data")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="an extra user (repeatable); admin/admin always exists")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every request (a round trip)")
    parser.add_argument("--bandwidth", type=float, default=0.0, metavar="MIBPS",
                        help="cap the total rate of response bodies (MiB/s) across all connections")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="answer this fraction of requests with 503")
    parser.add_argument("--no-range", action="store_true", help="ignore Range headers, as some servers do")
    parser.add_argument("--allow-guest", action="store_true",
                        help="serve requests without credentials, or with a dead session, as the guest user "
                             "(public projects only), as XNAT with requireLogin=false")
    parser.add_argument("--session-timeout", type=float, default=900.0, metavar="SECONDS",
                        help="idle seconds before a JSESSIONID expires (XNAT: 900; 0 = never)")
    parser.add_argument("--legacy-paths", action="store_true",
                        help="decode file paths in full (the emulator's old behaviour) instead of as XNAT does "
                             "(undecoded unless they hold %%20 or %%2B)")
    parser.add_argument("--rfc-range", action="store_true",
                        help="RFC 9110 ranges on files (clamped, 416) instead of Restlet's (the emulator's "
                             "old behaviour)")
    parser.add_argument("--restlet-401", action="store_true",
                        help="refuse unauthenticated requests with Restlet's guard page (realm \"XNAT Protected "
                             "Area\") instead of XNAT 1.8's Spring layer (Tomcat page, realm = site ID)")
    parser.add_argument("--strict-xnat", action="store_true",
                        help="every XNAT behaviour, whatever other switches say (overrides --legacy-paths, "
                             "--rfc-range, --restlet-401, --merged-in-out)")
    parser.add_argument("--merged-in-out", action="store_true",
                        help="assessor/reconstruction in and out resources in one list (the old emulator)")
    parser.add_argument("--log-level", default="WARNING",
                        help="DEBUG, INFO, WARNING (default: warnings and one line per failed request) or ERROR")
    args = parser.parse_args(argv)
    for spec in args.user:
        if ":" not in spec or not spec.split(":", 1)[0]:
            parser.error(f"--user wants NAME:PASSWORD, got {spec.split(':', 1)[0]!r}")
    if args.session_timeout < 0:
        parser.error("--session-timeout must be 0 or more")
    if not 0 <= args.fail_rate <= 1:
        parser.error("--fail-rate must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from xnatfs.emulator.server import EmulatorServer

    users = {"admin": "admin"}
    users.update(dict(spec.split(":", 1) for spec in args.user))
    faults = FaultSettings(latency_ms=args.latency_ms, bandwidth_mibps=args.bandwidth,
                           fail_rate=args.fail_rate, no_range=args.no_range)
    try:
        strict = args.strict_xnat
        server = EmulatorServer(args.data, host=args.host, port=args.port, sample=args.sample,
                                users=users, faults=faults, allow_guest=args.allow_guest,
                                session_timeout=args.session_timeout,
                                legacy_paths=args.legacy_paths and not strict,
                                http_range=args.rfc_range and not strict,
                                restlet_401=args.restlet_401 and not strict,
                                merged_in_out=args.merged_in_out and not strict)
        server.start()
    except OSError as exc:
        print(f"xnatfs emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stopped = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"XNAT emulator ready at {server.url}", flush=True)
    while not stopped.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
