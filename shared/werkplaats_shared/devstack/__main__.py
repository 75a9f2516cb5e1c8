"""``python -m werkplaats_shared.devstack``: the local default, started by ``python3 dev.py run``."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading

from .stack import PORTAL, SERVICES, LocalStack, StackConfig
from .story import load_story, summary

FIT = ("fit: how well one team suits one assignment (skills asked for and other skills, both sides' preferences, "
       "a short distance, the firm's priority); higher is better")
OBJECTIVE = ("objective: the sum of the fits of the matches the run chose; the solver made it as high as the round's "
             "policy allows (here: first as many assignments served as possible)")
DEMO_MARKER = "demo-summary.txt"  # in the data directory: the demo is loaded there, and what it printed


def where_to_look(stack: LocalStack, data_dir: str, keep_data: bool) -> list[str]:
    """The addresses a newcomer opens next, and what happens to the local data."""
    lines = [f"  portal        {stack.portal_url}  (sign in with the accounts above)"]
    lines += [f"  {service:<13} {stack.url(service)}/docs  (API documentation; 'Authorize' with an API key below)"
              for service in SERVICES]
    lines.append(f"  mails         {os.path.join(stack.maildir, 'new')}  (one file per e-mail, a Maildir)")
    lines.append(f"  logs          {data_dir}/<service>.log")
    if keep_data:
        lines.append(f"  {data_dir} is kept (--keep-data): the next run starts on this data")
    else:
        lines.append(f"  {data_dir} is emptied at each start; start with --keep-data to keep it")
    return lines


def running_line(stack: LocalStack) -> str:
    docs = ", ".join(f"{stack.url(service)}/docs" for service in SERVICES)
    return f"Running. Press Ctrl-C to stop. Portal {stack.portal_url}; API docs {docs}; mails in {stack.maildir}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python3 dev.py run", description=(
        "Start the embedded broker, an SMTP sink, the three services and the web portal, load the demo (the "
        "programme's case) through the real APIs, then keep running until Ctrl-C."))
    parser.add_argument("--exit-after-demo", action="store_true", help="stop everything after the demo")
    parser.add_argument("--data-dir", default=".werkplaats", help="local state (emptied at each start)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the data directory of the last run: start on its data, without loading the "
                             "demo again (a directory where no demo was loaded is emptied as usual)")
    parser.add_argument("--port-base", type=int, default=8100,
                        help="the portal listens on BASE, intake on BASE+1, matching BASE+2, scheduling BASE+3 "
                             "(default 8100)")
    parser.add_argument("--smtp-port", type=int, default=1025, help="port of the local SMTP sink")
    args = parser.parse_args()

    data_dir = os.path.abspath(args.data_dir)
    marker = os.path.join(data_dir, DEMO_MARKER)
    kept = args.keep_data and os.path.exists(marker)
    if not kept:
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
            print(f"  {service:<11} {stack.url(service)}  (documentation: {stack.url(service)}/docs)")
        if kept:
            print(f"\nKept the data of the last run in {data_dir} (--keep-data); the demo is not loaded again. "
                  "What it printed then:", flush=True)
            with open(marker, encoding="utf-8") as fh:
                print(fh.read(), end="", flush=True)
        else:
            story = load_story(stack, lambda line: print(line, flush=True))
            lines = ["", *summary(story), "", FIT, OBJECTIVE, "", "Sign in to the portal as:"]
            lines += [f"  {p.role:<12} {p.organisation:<36} {p.email:<36} password {p.password}"
                      for p in story.sign_ins]
            lines += ["", "API keys (send as 'Authorization: Bearer <key>'):"]
            lines += [f"  {name:<50} {key}" for name, key in story.keys.items()]
            text = "\n".join(lines) + "\n"
            print(text, end="", flush=True)
            # what was printed, for a later run with --keep-data; the data directory is this person's own
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        print("\nWhere to look:")
        for line in where_to_look(stack, data_dir, args.keep_data):
            print(line)
        if not args.exit_after_demo:
            print(f"\n{running_line(stack)}", flush=True)
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
