"""The Grafana boards of Relais, as code: `python -m ops.grafana.boards` writes ops/grafana/dashboards/*.json.

Two boards: operations (is the flow moving, and if not, where it is stuck) and coordination (the referral
flow seen by the associations' coordinators). Every query uses only metrics the services export; the
end-to-end test runs each one against a real Prometheus scraping the real services and expects series.
Grafana's `$__rate_interval` and `$__range` are the only variables.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "relais-prometheus"}  # provisioning/datasources/prometheus.yml
RATE = "$__rate_interval"


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    description: str
    queries: list[Query]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Row:
    title: str


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


OPERATIONS: list[Row | Panel] = [
    Row("Services et dépendances"),
    Panel(
        "Instances qui répondent",
        "1 quand Prometheus lit /metrics de l'instance. Alerte : RelaisServiceDown.",
        [q('up{job=~"relais-.*"}', "{{service}}")],
        unit="none",
    ),
    Panel(
        "Dépendances joignables (Kafka, base de données)",
        "Vérification de chaque instance toutes les 5 s, même sans trafic. "
        "Alertes : RelaisStoreUnavailable, RelaisKafkaUnavailable.",
        [q("min by (service, dependency) (relais_dependency_up)", "{{service}} · {{dependency}}")],
        unit="none",
    ),
    Panel(
        "Durée des vérifications de disponibilité (p99)",
        "Un ping qui ralentit annonce souvent une panne de Kafka ou de la base.",
        [
            q(
                f"histogram_quantile(0.99, sum by (le, dependency) "
                f"(rate(relais_dependency_check_seconds_bucket[{RATE}])))",
                "{{dependency}}",
            )
        ],
        unit="s",
    ),
    Panel(
        "Réponses HTTP 4xx et 5xx par seconde",
        "4xx : demandes refusées (saisie invalide, jeton absent, dossier inconnu) ; 5xx : erreurs du service "
        "ou base indisponible (503). Alerte : RelaisHttpServerErrors.",
        [
            q(
                f'sum by (job, status) (rate(relais_http_requests_total{{status=~"4..|5.."}}[{RATE}]))',
                "{{job}} {{status}}",
            )
        ],
        unit="reqps",
    ),
    Row("Kafka : consommation"),
    Panel(
        "Retard des groupes de consommateurs",
        "Messages publiés pas encore traités, par groupe (chaque partition comptée une fois). "
        "Alertes : RelaisConsumerLagHigh, RelaisConsumerStalled.",
        [q("sum by (group) (max by (group, topic, partition) (relais_consumer_lag))", "{{group}}")],
    ),
    Panel(
        "Événements traités par seconde",
        "Effets enregistrés (ok) ou messages mis en lettres mortes.",
        [
            q(
                f"sum by (job, event_type, result) (rate(relais_events_handled_total[{RATE}]))",
                "{{job}} {{event_type}} {{result}}",
            )
        ],
        unit="ops",
    ),
    Panel(
        "Nouvelles tentatives par seconde",
        "Traitements en échec réessayés avec attente croissante. Alerte : RelaisHandlerRetries.",
        [q(f"sum by (job, event_type) (rate(relais_handler_retries_total[{RATE}]))", "{{job}} {{event_type}}")],
        unit="ops",
    ),
    Panel(
        "Lettres mortes (dernière heure)",
        "Messages mis de côté après les tentatives : `relais dlq list`, corriger, puis `relais dlq replay`. "
        "Alerte : RelaisDeadLetters.",
        [q("sum by (job, topic, reason) (increase(relais_dead_letters_total[1h]))", "{{job}} {{topic}} {{reason}}")],
    ),
    Panel(
        "Durée d'un traitement par type d'événement (p95)",
        "De la lecture à l'effet enregistré, par événement.",
        [
            q(
                f"histogram_quantile(0.95, sum by (le, job, event_type) (rate(relais_handler_seconds_bucket[{RATE}])))",
                "{{job}} {{event_type}}",
            )
        ],
        unit="s",
    ),
    Panel(
        "Durée d'un lot de messages FastStream (p95)",
        "Un lot entier, du point de vue de FastStream.",
        [
            q(
                f"histogram_quantile(0.95, sum by (le, job) "
                f"(rate(faststream_received_processed_messages_duration_seconds_bucket[{RATE}])))",
                "{{job}}",
            )
        ],
        unit="s",
    ),
    Row("Outbox : publication des événements"),
    Panel(
        "Événements enregistrés pas encore publiés",
        "Au dernier passage du relais. Les événements sont en sécurité dans la base. Alerte : RelaisOutboxBacklog.",
        [q("max by (job) (relais_outbox_backlog)", "{{job}}")],
    ),
    Panel(
        "Âge des événements à leur publication (p50, p99)",
        "De l'enregistrement à l'accusé de Kafka. Alerte : RelaisOutboxSlow.",
        [
            q(
                f"histogram_quantile(0.5, sum by (le, job) (rate(relais_outbox_relay_seconds_bucket[{RATE}])))",
                "p50 {{job}}",
            ),
            q(
                f"histogram_quantile(0.99, sum by (le, job) (rate(relais_outbox_relay_seconds_bucket[{RATE}])))",
                "p99 {{job}}",
            ),
        ],
        unit="s",
    ),
    Panel(
        "Événements publiés par seconde",
        "",
        [q(f"sum by (job, event_type) (rate(relais_outbox_published_total[{RATE}]))", "{{job}} {{event_type}}")],
        unit="ops",
    ),
    Row("Base de données et HTTP"),
    Panel(
        "Durée des commandes de la base (p99)",
        "Chaque commande MongoDB/FerretDB, mesurée par le pilote.",
        [
            q(
                f"histogram_quantile(0.99, sum by (le, job, command) "
                f'(rate(relais_store_command_seconds_bucket{{outcome="ok"}}[{RATE}])))',
                "{{job}} {{command}}",
            )
        ],
        unit="s",
    ),
    Panel(
        "Commandes de la base par seconde",
        "Réussies (ok) et en échec (error).",
        [q(f"sum by (job, outcome) (rate(relais_store_command_seconds_count[{RATE}]))", "{{job}} {{outcome}}")],
        unit="ops",
    ),
    Panel(
        "Durée des requêtes HTTP (p95)",
        "Hors /health et /metrics.",
        [
            q(
                f"histogram_quantile(0.95, sum by (le, job) (rate(relais_http_request_seconds_bucket[{RATE}])))",
                "{{job}}",
            )
        ],
        unit="s",
    ),
    Row("Objectif : 99 % des dossiers orientés en moins d'une seconde"),
    Panel(
        "Dossiers orientés en moins d'une seconde",
        "De la réception par intake à la première décision publiée par routing. Objectif : 99 %.",
        [
            q("1 - relais:case_routing_slow:ratio_rate5m", "5 min"),
            q("1 - relais:case_routing_slow:ratio_rate1h", "1 h"),
        ],
        unit="percentunit",
        thresholds=[(0, "red"), (0.99, "green")],
    ),
    Panel(
        "Vitesse de consommation du budget d'erreur",
        "1 = le budget d'un mois dure un mois. Page à 14,4 (1 h et 5 min : RelaisCaseRoutingFastBurn) "
        "ou à 6 (6 h et 30 min : RelaisCaseRoutingSlowBurn).",
        [
            q("relais:case_routing_slow:ratio_rate5m / 0.01", "5 min"),
            q("relais:case_routing_slow:ratio_rate1h / 0.01", "1 h"),
            q("relais:case_routing_slow:ratio_rate30m / 0.01", "30 min"),
            q("relais:case_routing_slow:ratio_rate6h / 0.01", "6 h"),
        ],
        thresholds=[(0, "green"), (6, "orange"), (14.4, "red")],
    ),
    Panel(
        "De la réception à l'orientation (p50, p99)",
        "",
        [
            q(f"histogram_quantile(0.5, sum by (le) (rate(relais_case_routing_seconds_bucket[{RATE}])))", "p50"),
            q(f"histogram_quantile(0.99, sum by (le) (rate(relais_case_routing_seconds_bucket[{RATE}])))", "p99"),
        ],
        unit="s",
    ),
]

COORDINATION: list[Row | Panel] = [
    Row("Arrivées et orientation"),
    Panel(
        "Demandes reçues (par heure)",
        "Demandes d'aide enregistrées par intake.",
        [q(f'sum(rate(relais_outbox_published_total{{event_type="CaseReceived"}}[{RATE}])) * 3600', "reçues")],
    ),
    Panel(
        "Décisions d'orientation par association et statut (dernière heure)",
        "Orienté vers une antenne, liste d'attente, APESA d'abord, commune inconnue.",
        [
            q(
                "sum by (association, status) (increase(relais_routing_decisions_total[1h]))",
                "{{association}} {{status}}",
            )
        ],
    ),
    Panel(
        "Dossiers orientés par antenne (sur la période)",
        "Première orientation et réorientations.",
        [
            q(
                'sum by (association, antenna) (increase(relais_flow_events_total{event_type="CaseRouted"}[$__range]))',
                "{{association}} {{antenna}}",
                instant=True,
            )
        ],
        kind="bargauge",
    ),
    Panel(
        "Liste d'attente de l'orientation",
        "Dossiers sans antenne ouverte avec de la place, par association.",
        [q("sum by (association) (relais_routing_waitlist_size)", "{{association}}")],
    ),
    Row("Accompagnement"),
    Panel(
        "Dossiers ouverts par étape",
        "",
        [q("sum by (association, step) (relais_coaching_open_cases)", "{{association}} {{step}}")],
    ),
    Panel(
        "Dossiers ouverts par antenne",
        "",
        [q("sum by (association, antenna) (relais_coaching_open_cases)", "{{association}} {{antenna}}", instant=True)],
        kind="bargauge",
    ),
    Panel(
        "En attente d'un bénévole",
        "Dossiers acceptés sans coach ou sans parrain ; « bloqués » : aucun bénévole libre à leur antenne.",
        [
            q(
                "sum by (association, antenna, role) (relais_coaching_waiting_cases)",
                "{{association}} {{antenna}} {{role}}",
            ),
            q(
                "sum by (association, antenna, role) (relais_coaching_waiting_blocked_cases)",
                "bloqués {{association}} {{antenna}} {{role}}",
            ),
        ],
    ),
    Panel(
        "Délais moyens : réception → comité, comité → coach (jours)",
        "",
        [
            q(
                "max by (association, antenna, wait) (relais_coaching_wait_days_mean)",
                "{{association}} {{antenna}} {{wait}}",
            ),
            q("max by (association, wait) (relais_coaching_wait_days_max)", "plus long {{association}} {{wait}}"),
        ],
        unit="d",
    ),
    Panel(
        "Dossiers en retard sur les objectifs",
        "Sans décision du comité ou sans coach dans les délais fixés par l'association.",
        [q("sum by (association, target) (relais_coaching_overdue_cases)", "{{association}} {{target}}")],
    ),
    Row("Bénévoles"),
    Panel(
        "Charge des bénévoles",
        "Personnes suivies et capacité des bénévoles disponibles, par rôle.",
        [
            q("sum by (association, role) (relais_coaching_volunteer_followed)", "suivies {{association}} {{role}}"),
            q("sum by (association, role) (relais_coaching_volunteer_capacity)", "capacité {{association}} {{role}}"),
        ],
    ),
    Panel(
        "Places libres par antenne",
        "",
        [
            q(
                "sum by (association, antenna, role) (relais_coaching_volunteer_slots_free)",
                "{{association}} {{antenna}} {{role}}",
                instant=True,
            )
        ],
        kind="bargauge",
    ),
    Row("Parcours et issues"),
    Panel(
        "Comités favorables et séances tenues (dernière heure)",
        "",
        [
            q(
                "sum by (association, event_type) "
                '(increase(relais_flow_events_total{event_type=~"CommitteeApproved|SessionHeld"}[1h]))',
                "{{association}} {{event_type}}",
            )
        ],
    ),
    Panel(
        "Issues des accompagnements (sur la période)",
        "Dossiers clos par issue, refus du comité compris.",
        [
            q(
                'sum by (association, outcome) (increase(relais_flow_events_total{event_type="CaseClosed"}[$__range]))',
                "{{association}} {{outcome}}",
                instant=True,
            )
        ],
        kind="bargauge",
    ),
    Panel(
        "Courriels par destinataire et résultat (dernière heure)",
        "",
        [q("sum by (recipient, result) (increase(relais_notifications_total[1h]))", "{{recipient}} {{result}}")],
    ),
    Panel(
        "Fil des partenaires : statuts publiés (dernière heure)",
        "",
        [q("sum by (status) (increase(relais_partner_feed_records_total[1h]))", "{{status}}")],
    ),
]

BOARDS = {
    "relais-operations": ("Relais — exploitation", OPERATIONS),
    "relais-coordination": ("Relais — coordination", COORDINATION),
}


def dashboard(uid: str, title: str, items: list[Row | Panel]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = 0
    for number, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += 0 if x == 0 else 8
            x = 0
            panels.append(
                {
                    "id": number,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            x, y = 0, y + item.height
        panels.append(_panel(number, item, x, y))
        x += item.width
    return {
        "uid": uid,
        "title": title,
        "tags": ["relais"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(number: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    thresholds = panel.thresholds or [(0, "green")]
    steps = [{"color": color, "value": None if i == 0 else value} for i, (value, color) in enumerate(thresholds)]
    return {
        "id": number,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "instant": query.instant,
                "range": not query.instant,
            }
            for i, query in enumerate(panel.queries)
        ],
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every board."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, items), ensure_ascii=False, indent=2) + "\n"
        for uid, (title, items) in BOARDS.items()
    }


def main() -> int:
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (DASHBOARDS_DIR / name).write_text(text)
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
