"""`relais`: operator commands (run the local system, stop it, export the event schemas)."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ops.devstack import StartupError


def cmd_run(args: argparse.Namespace) -> int:
    from ops.stack import LogFollower, Stack

    stack = Stack()
    stopping = False

    def interrupt(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    follower = LogFollower(list(stack.services.values()))
    try:
        print("relais: starting FerretDB and Kafka ...", flush=True)
        started = time.monotonic()
        stack.start_infra()
        print(f"relais: Kafka on {stack.kafka.bootstrap}, FerretDB on {stack.ferretdb.url} "
              f"({time.monotonic() - started:.1f}s)", flush=True)
        for node in stack.services.values():
            node.data_dir.mkdir(parents=True, exist_ok=True)
            node.log_path.touch()
        follower.start()
        stack.start_services()
        print("\nrelais: the referral flow is running (Ctrl-C stops everything)", flush=True)
        for name, node in stack.services.items():
            print(f"  {name:<14} {node.url}   docs {node.url}/docs   health {node.url}/health   "
                  f"metrics {node.url}/metrics", flush=True)
        print(f"  emails         {stack.mailsink.mail_dir} (.eml files; SMTP sink on port {stack.mailsink.port})",
              flush=True)
        print(f"  data and logs  {stack.config.data_dir}\n", flush=True)
        while True:
            for name, node in stack.services.items():
                if node.proc and node.proc.poll() is not None:
                    print(f"relais: {name} exited with code {node.proc.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nrelais: stopping ...", flush=True)
        return 0
    except StartupError as exc:
        print(f"relais: could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        follower.stop()
        stack.stop()
        print("relais: stopped", flush=True)


def cmd_stop(args: argparse.Namespace) -> int:
    from ops.stack import stop_recorded

    stopped = stop_recorded()
    print("relais: stopped " + (", ".join(stopped) if stopped else "nothing (no recorded process)"))
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from shared.schemas.export import main

    return main()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relais", description="Relais operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start Kafka, FerretDB and the four services in the foreground").set_defaults(
        func=cmd_run)
    sub.add_parser("stop", help="stop processes left by an interrupted `relais run`").set_defaults(func=cmd_stop)
    sub.add_parser("schemas", help="regenerate shared/schemas/json from the models").set_defaults(
        func=cmd_schemas)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
