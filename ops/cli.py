"""`relais`: operator commands (run the local system, stop it, dead letters, schemas, coverage)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

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
        print(
            f"relais: Kafka on {stack.kafka.bootstrap}, FerretDB on {stack.ferretdb.url} "
            f"({time.monotonic() - started:.1f}s)",
            flush=True,
        )
        for node in stack.services.values():
            node.data_dir.mkdir(parents=True, exist_ok=True)
            node.log_path.touch()
        follower.start()
        stack.start_services()
        monitoring = start_monitoring(stack)
        print("\nrelais: the referral flow is running (Ctrl-C stops everything)", flush=True)
        for name, node in stack.services.items():
            print(
                f"  {name:<14} {node.url}   docs {node.url}/docs   health {node.url}/health   "
                f"metrics {node.url}/metrics",
                flush=True,
            )
        print(
            f"  emails         {stack.mailsink.mail_dir} (.eml files; SMTP sink on port {stack.mailsink.port})",
            flush=True,
        )
        if monitoring:
            print(
                f"  prometheus     {stack.prometheus.url}   targets {stack.prometheus.url}/targets   "
                f"alerts {stack.prometheus.url}/alerts",
                flush=True,
            )
        if monitoring and stack.alertmanager.proc is not None:
            print(
                f"  alertmanager   {stack.alertmanager.url}   (alerts are emailed to the mail sink above)", flush=True
            )
        print(
            f"  kafka secrets  {stack.kafka.secrets.folder} (one password per principal; README, Security)", flush=True
        )
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


def start_monitoring(stack) -> bool:  # noqa: ANN001 - ops.stack.Stack, imported lazily
    """Prometheus and Alertmanager when their Debian packages are installed (`make provision` does it)."""
    from ops.devstack import AlertmanagerNode, PrometheusNode

    if not PrometheusNode.available():
        print("relais: Prometheus is not installed (`make provision` installs it): running without it", flush=True)
        return False
    stack.start_monitoring(alerting=AlertmanagerNode.available())
    return True


def cmd_stop(args: argparse.Namespace) -> int:
    from ops.stack import stop_recorded

    stopped = stop_recorded()
    print("relais: stopped " + (", ".join(stopped) if stopped else "nothing (no recorded process)"))
    return 0


def admin_access(args: argparse.Namespace):  # noqa: ANN201 - a KafkaAccess
    """The admin principal, its password from the secrets folder (`make run`'s by default)."""
    from ops.kafka_security import Secrets
    from shared.topology import ADMIN

    secrets = Secrets(args.secrets)
    if not secrets.password_file(ADMIN).exists():
        raise SystemExit(f"relais: no Kafka admin password in {args.secrets} (has `make run` started once?)")
    return secrets.access(ADMIN, args.bootstrap, "SASL_SSL" if args.ca_file else "SASL_PLAINTEXT", args.ca_file or "")


def kafka_arguments(parser: argparse.ArgumentParser) -> None:
    from ops.devstack import LOCAL

    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument(
        "--secrets",
        type=Path,
        default=LOCAL / "run" / "secrets",
        help="folder holding kafka-admin.password (default: make run's)",
    )
    parser.add_argument("--ca-file", help="CA certificate of the broker, for a TLS (SASL_SSL) listener")


def cmd_dlq(args: argparse.Namespace) -> int:
    from ops.dlq import run

    return run(args.action, admin_access(args), args.group)


def cmd_partners(args: argparse.Namespace) -> int:
    from functools import partial

    from ops.kafka_security import Secrets
    from ops.partners import (
        add,
        check_name,
        issue_http_token,
        list_partners,
        revoke,
        revoke_http_tokens,
        with_intake_credentials,
    )

    admin = admin_access(args)
    try:
        for name in args.names:
            check_name(name)
        if args.action == "add":
            for name in args.names:
                path = add(admin, Secrets(args.secrets), name)
                token = with_intake_credentials(args.mongo_url, args.intake_db, partial(issue_http_token, partner=name))
                print(
                    f"relais: partner {name}: user partner.{name}, topic relais.partner-status.{name}.v1, "
                    f"groups partner.{name}.*; Kafka password in {path} (hand it over out of band)\n"
                    f"relais: partner {name}: HTTP token for intake (POST /cases, Authorization: Bearer), shown "
                    f"only now, hand it over out of band: {token}"
                )
        elif args.action == "revoke":
            for name in args.names:
                revoke(admin, name)
                tokens = with_intake_credentials(
                    args.mongo_url, args.intake_db, partial(revoke_http_tokens, partner=name)
                )
                print(f"relais: partner {name} revoked (Kafka user and ACLs, {tokens} HTTP token(s); its topic stays)")
        else:
            partners = list_partners(admin)
            with_http = set(with_intake_credentials(args.mongo_url, args.intake_db, lambda store: store.partners()))
            for partner in partners:
                http = "http token" if partner.name in with_http else "no http token"
                print(f"{partner.name:<24} {partner.principal:<32} {partner.topic:<48} {http}")
            if not partners:
                print("no partners")
    except ValueError as exc:
        print(f"relais partners: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_kafka_provision(args: argparse.Namespace) -> int:
    """Users, topics and ACLs on any Kafka (an existing cluster too), as `make run` and compose provision theirs."""
    from ops.kafka_security import Secrets, provision, report

    admin = admin_access(args)
    try:
        done = provision(
            admin,
            Secrets(args.secrets).ensure(),
            partitions=args.partitions,
            replication=args.replication,
            min_insync=args.min_insync_replicas,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"relais kafka-provision: {exc}", file=sys.stderr)
        return 2
    print(report(done, args.replication))
    print(f"relais: each service's password is in {args.secrets}/kafka-<principal>.password")
    return 0


def cmd_compose_secrets(args: argparse.Namespace) -> int:
    from ops.compose_secrets import write

    files = write(args.dir) if args.dir else write()
    print(f"relais: {len(files)} secret files for docker-compose.yml in {files[0].parent}")
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from shared.schemas.export import main

    return main()


def cmd_coverage(args: argparse.Namespace) -> int:
    import json
    import time

    from ops.coverage import SCOPE_LABELS, render_table, run
    from services.routing.geodata import GeoDataMissing
    from services.routing.settings import RoutingSettings

    settings = RoutingSettings()
    started = time.perf_counter()
    try:
        report, sites, analysis = run(
            args.geodata or settings.geodata_file,
            args.antennas or settings.antennas_file,
            settings.travel_model(),
            tuple(args.open),
            tuple(args.close),
            args.min_population,
        )
    except (GeoDataMissing, ValueError) as exc:
        print(f"relais coverage: {exc}", file=sys.stderr)
        return 2
    report["seconds"] = round(time.perf_counter() - started, 3)
    if args.map:
        from ops.coverage_map import draw_map

        scope = next(s for s in report["scopes"] if s["scope"] == args.map_scope)
        title = (
            f"{report['region']}: {SCOPE_LABELS[args.map_scope]}, "
            f"{scope['population_share'] * 100:.1f} % of people within {report['promise_minutes']:.0f} min"
        )
        draw_map(analysis, sites, args.map_scope, scope["best_new_antenna"], title, args.map)
        report["map"] = str(args.map)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render_table(report))
        print(f"\n({report['seconds']:.2f} s" + (f"; map written to {args.map})" if args.map else ")"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relais", description="Relais operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="start Kafka, FerretDB, the four services and Prometheus in the foreground"
    ).set_defaults(func=cmd_run)
    sub.add_parser("stop", help="stop processes left by an interrupted `relais run`").set_defaults(func=cmd_stop)
    dlq = sub.add_parser("dlq", help="list dead letters, or replay them to their source topic after a fix")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--group", help="only this consumer group's dead letters (e.g. routing)")
    kafka_arguments(dlq)
    dlq.set_defaults(func=cmd_dlq)
    sub.add_parser("schemas", help="regenerate shared/schemas/json from the models").set_defaults(func=cmd_schemas)
    partners = sub.add_parser(
        "partners",
        help="referring partners: a Kafka principal reading only its own status feed, and an HTTP token for intake",
    )
    partners.add_argument("action", choices=["add", "list", "revoke"])
    partners.add_argument("names", nargs="*", help="partner names, e.g. etude-martin")
    kafka_arguments(partners)
    partners.add_argument("--mongo-url", default="mongodb://127.0.0.1:27017/", help="intake's database server")
    partners.add_argument("--intake-db", default="relais_intake", help="intake's database (its partner tokens)")
    partners.set_defaults(func=cmd_partners)
    kafka = sub.add_parser(
        "kafka-provision",
        help="the services' Kafka users, the contract's topics and the ACLs, as the admin (idempotent)",
        description="Provision a Kafka cluster for Relais as its `admin` super user: a SCRAM-SHA-512 user per "
        "service (passwords made in --secrets on first use), the contract's topics, the ACLs of shared/topology.py.",
    )
    kafka.add_argument("--partitions", type=int, default=3, help="partitions of each new topic (default 3)")
    kafka.add_argument("--replication", type=int, default=1, help="copies of each new topic (3 on a cluster)")
    kafka.add_argument(
        "--min-insync-replicas", type=int, help="copies a write needs, set on every topic (2 with replication 3)"
    )
    kafka_arguments(kafka)
    kafka.set_defaults(func=cmd_kafka_provision)
    compose = sub.add_parser(
        "compose-secrets",
        help="Kafka passwords, TLS certificate and broker config for docker-compose.yml (made once, kept)",
    )
    compose.add_argument("--dir", type=Path, help="default: .local/compose/secrets")
    compose.set_defaults(func=cmd_compose_secrets)
    coverage = sub.add_parser(
        "coverage",
        help="share of AURA communes and people within one hour of an open antenna",
        description="Coverage of Auvergne-Rhône-Alpes by the antennas of the directory (routing's travel "
        "model and default antennas; see docs/routing.md).",
    )
    coverage.add_argument("--format", choices=("table", "json"), default="table")
    coverage.add_argument("--map", type=Path, metavar="FILE.png", help="also draw a map image")
    coverage.add_argument(
        "--map-scope",
        choices=("60000_rebonds", "second_souffle", "ensemble"),
        default="ensemble",
        help="whose antennas the map shows (default: both)",
    )
    coverage.add_argument(
        "--open",
        action="append",
        default=[],
        metavar="ANTENNA",
        help="count this antenna as open, e.g. bourg-en-bresse (repeatable); the table then shows before → after",
    )
    coverage.add_argument(
        "--close", action="append", default=[], metavar="ANTENNA", help="count this antenna as closed (repeatable)"
    )
    coverage.add_argument(
        "--min-population",
        type=int,
        default=5000,
        metavar="N",
        help="a new antenna opens in a commune of at least N inhabitants (default 5000)",
    )
    coverage.add_argument(
        "--antennas",
        type=Path,
        help="directory file (default: routing's seed; a JSON export of GET /antennas works too)",
    )
    coverage.add_argument("--geodata", type=Path, help="communes file (default: .local/geo/communes.csv.gz)")
    coverage.set_defaults(func=cmd_coverage)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
