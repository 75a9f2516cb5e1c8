"""``python -m werkplaats_shared.devstack``: the local default, started by ``python3 dev.py run``."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading

from .demo import load_and_run, report
from .stack import PORTAL, SERVICES, LocalStack, StackConfig


def main() -> None:
    parser = argparse.ArgumentParser(prog="python3 dev.py run", description=(
        "Start the embedded broker, an SMTP sink, the three services and the web portal, run a demo batch end to end, "
        "then keep running until Ctrl-C."))
    parser.add_argument("--exit-after-demo", action="store_true", help="stop everything after the demo")
    parser.add_argument("--data-dir", default=".werkplaats", help="local state (wiped at start)")
    parser.add_argument("--port-base", type=int, default=8100,
                        help="the portal listens on BASE, intake on BASE+1, matching BASE+2, scheduling BASE+3 "
                             "(default 8100)")
    parser.add_argument("--smtp-port", type=int, default=1025, help="port of the local SMTP sink")
    args = parser.parse_args()

    data_dir = os.path.abspath(args.data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    ports = {service: args.port_base + i for i, service in enumerate(SERVICES, start=1)}
    ports[PORTAL] = args.port_base
    stack = LocalStack(StackConfig(data_dir=data_dir, ports=ports, smtp_port=args.smtp_port, portal=True))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    code = 0
    try:
        print(f"starting embedded broker, SMTP sink and services (logs in {data_dir})", flush=True)
        stack.start()
        for service in SERVICES:
            print(f"  {service:<11} {stack.url(service)}  (OpenAPI: {stack.url(service)}/openapi.json)")
        result = load_and_run(stack, lambda line: print(line, flush=True))
        report(result, stack, lambda line: print(line, flush=True))
        print(f"\nPortal: open {stack.portal_url} in a browser and sign in as")
        for person in result.sign_ins:
            print(f"  {person.role:<12} {person.organisation:<28} {person.email:<36} password {person.password}")
        print("\nAPI keys (shown once; send as 'Authorization: Bearer <key>'):")
        for name, key in result.keys.items():
            print(f"  {name:<45} {key}")
        if not args.exit_after_demo:
            print("\nRunning. Press Ctrl-C to stop.", flush=True)
            stop.wait()
    except Exception as exc:  # noqa: BLE001 - report and stop everything
        print(f"demo failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.")
    sys.exit(code)


if __name__ == "__main__":
    main()
