"""docker-compose.yml and the Dockerfile against the code they start.

No Docker engine runs the suite, so these checks catch what would only fail at `docker compose up`:
a variable the settings class silently ignores (extra="ignore"), a port the service does not listen
on, a service started before Kafka or MongoDB are ready, a container without a health check.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from services.coaching.settings import CoachingSettings
from services.intake.settings import IntakeSettings
from services.notifications.settings import NotificationsSettings
from services.routing.settings import RoutingSettings
from shared.settings import ServiceSettings, env_prefix
from shared.topology import ADMIN, PRINCIPALS

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "routing": RoutingSettings,
    "coaching": CoachingSettings,
    "notifications": NotificationsSettings,
}
INFRASTRUCTURE = ("kafka", "mongodb")


@pytest.fixture(scope="module")
def compose() -> dict:
    path = ROOT / "docker-compose.yml"
    assert path.is_file(), f"{path} is missing"
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose.get("services") or {}


CLUSTER_ENV = ROOT / "ops" / "compose" / "cluster.env"


def interpolate(value: str, variables: dict[str, str] | None = None) -> str:
    """Compose's `${NAME:-default}` and `${NAME}` with the given variables (none: every default)."""
    variables = variables or {}

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        return variables.get(name) or (default if default is not None else "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", substitute, value)


def dotenv(path: Path) -> dict[str, str]:
    """An env file as `docker compose --env-file` reads it: KEY=VALUE lines, comments and blank lines skipped."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def environment(service: dict, variables: dict[str, str] | None = None) -> dict[str, str]:
    """Compose accepts a mapping or a list of KEY=VALUE; values reach the process as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else interpolate(str(value), variables) for key, value in env.items()}


def words(command: str | list, variables: dict[str, str] | None = None) -> list[str]:
    parts = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    return [interpolate(part, variables) for part in parts]


def port_mappings(service: dict) -> list[tuple[str | None, str]]:
    """(published, container) pairs from the short ("8001:8001", "127.0.0.1:8001:8001") or long syntax."""
    mappings = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published, target = entry.get("published"), entry["target"]
        else:
            parts = str(entry).split("/")[0].split(":")
            published, target = (parts[-2] if len(parts) > 1 else None), parts[-1]
        mappings.append((None if published is None else str(published), str(target)))
    return mappings


def has_health_check(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    test = words(check.get("test") or [])
    return bool(test) and test[0] != "NONE" and check.get("disable") is not True


def relais_service(services: dict[str, dict], name: str) -> dict:
    assert name in services, f"docker-compose.yml has no `{name}` service"
    return services[name]


def test_compose_runs_the_infrastructure_and_every_relais_service(services):
    missing = [name for name in (*INFRASTRUCTURE, *SETTINGS) if name not in services]
    assert not missing, f"docker-compose.yml has no service for: {', '.join(missing)}"


def one_shot(services: dict[str, dict], name: str) -> bool:
    """A container that runs to completion (never restarted) and that others wait for to have succeeded."""
    waited_for = any(
        ((s.get("depends_on") or {}).get(name) or {}).get("condition") == "service_completed_successfully"
        for s in services.values()
        if isinstance(s.get("depends_on"), dict)
    )
    return str(services[name].get("restart", "no")) == "no" and waited_for


def test_every_container_has_a_health_check(services):
    without = [
        name for name, service in services.items() if not has_health_check(service) and not one_shot(services, name)
    ]
    assert not without, f"services without a health check (healthcheck.test): {', '.join(without)}"


KAFKA_SECRETS = ("kafka-server.properties", "kafka-admin-client.properties", "kafka-broker.p12", "kafka-ca.pem")


def test_kafka_is_provisioned_before_any_service_starts(services):
    assert one_shot(services, "kafka-provision")
    command = words(services["kafka-provision"]["command"])
    assert command[:4] == ["python", "-m", "ops.kafka_security", "provision"]
    assert "SASL_SSL" in command
    given = set(services["kafka-provision"].get("secrets") or [])
    assert {f"kafka-{name}.password" for name in (ADMIN, *PRINCIPALS)} <= given
    for name in SETTINGS:
        conditions = {
            dep: (c or {}).get("condition") for dep, c in relais_service(services, name)["depends_on"].items()
        }
        assert conditions.get("kafka-provision") == "service_completed_successfully", name


@pytest.mark.parametrize("container", ["intake", "routing", "coaching", "coaching-60000_rebonds", "notifications"])
def test_each_service_logs_in_over_tls_as_its_own_principal_with_only_its_password(services, container, monkeypatch):
    service = relais_service(services, container)
    module = words(service["command"])[2].removeprefix("services.")
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)
    settings = SETTINGS[module]()
    expected = f"coaching-{settings.association.value}" if isinstance(settings, CoachingSettings) else module
    assert settings.kafka_username == expected and expected in PRINCIPALS
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_password_file == f"/run/secrets/kafka-{expected}.password"
    assert settings.kafka_ssl_cafile == "/run/secrets/kafka-ca.pem"
    assert not settings.kafka_password.get_secret_value(), "passwords come from secret files, never the compose file"
    own = {"notifications": {"notifications-secret-key"}}.get(module, set())  # its signing key, nobody else's
    assert set(service.get("secrets") or []) == {f"kafka-{expected}.password", "kafka-ca.pem", *own}


def test_compose_secrets_are_the_files_relais_compose_secrets_makes(compose, tmp_path):
    from ops.compose_secrets import write

    made = {path.name for path in write(tmp_path / "secrets")}
    declared = compose.get("secrets") or {}
    for name, secret in declared.items():
        assert interpolate(secret["file"]) == f".local/compose/secrets/{name}"
        assert name in made, f"{name} is not made by `relais compose-secrets`"
    assert set(KAFKA_SECRETS) <= set(declared)
    properties = (tmp_path / "secrets" / "kafka-server.properties").read_text()
    assert "listener.security.protocol.map=CONTROLLER:SASL_SSL,CLIENT:SASL_SSL" in properties
    assert "allow.everyone.if.no.acl.found=false" in properties and "super.users=User:admin" in properties


@pytest.mark.parametrize("name", SETTINGS)
def test_variables_are_real_settings_of_their_service(services, name):
    settings_cls, prefix = SETTINGS[name], env_prefix(name)
    env = environment(relais_service(services, name))
    assert env, f"{name}: no environment variables (Kafka and MongoDB addresses are needed)"
    foreign = [key for key in env if not key.startswith(prefix)]
    assert not foreign, f"{name}: variables without the {prefix} prefix are ignored by the service: {foreign}"
    unknown = [key for key in env if key[len(prefix) :].lower() not in settings_cls.model_fields]
    assert not unknown, (
        f"{name}: {unknown} match no field of {settings_cls.__name__} (known: {sorted(settings_cls.model_fields)})"
    )


@pytest.mark.parametrize("name", SETTINGS)
def test_settings_load_from_the_compose_environment(services, name, monkeypatch):
    """Values must parse, and the service must listen where the other containers look for it."""
    for key, value in environment(relais_service(services, name)).items():
        monkeypatch.setenv(key, value)
    settings = SETTINGS[name]()
    hosts = set(services)
    assert settings.http_host == "0.0.0.0", (
        f"{name}: HTTP_HOST={settings.http_host!r} is unreachable from outside its container; use 0.0.0.0"
    )
    kafka_hosts = {address.rsplit(":", 1)[0] for address in settings.kafka_bootstrap.split(",")}
    assert kafka_hosts <= hosts, f"{name}: KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} names no compose service"
    mongo_host = re.sub(r"^mongodb://([^@/]*@)?", "", settings.mongo_url).split("/")[0].rsplit(":", 1)[0]
    assert mongo_host in hosts, f"{name}: MONGO_URL={settings.mongo_url!r} names no compose service"


@pytest.mark.parametrize("name", SETTINGS)
def test_published_port_is_the_http_port(services, name, monkeypatch):
    service = relais_service(services, name)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, value)
    port = SETTINGS[name]().http_port
    mappings = port_mappings(service)
    assert mappings == [(str(port), str(port))], (
        f"{name}: listens on {port} (HTTP_PORT), so ports must be ['{port}:{port}'], found {mappings}"
    )
    probe = " ".join(words((service.get("healthcheck") or {}).get("test") or []))
    assert f":{port}/health" in probe, f"{name}: the health check does not probe :{port}/health: {probe}"


@pytest.mark.parametrize("name", SETTINGS)
def test_relais_services_start_after_kafka_and_mongodb_are_healthy(services, name):
    depends_on = relais_service(services, name).get("depends_on") or {}
    conditions = {
        dep: (depends_on.get(dep) or {}).get("condition") if isinstance(depends_on, dict) else None
        for dep in INFRASTRUCTURE
    }
    not_waiting = [dep for dep, condition in conditions.items() if condition != "service_healthy"]
    assert not not_waiting, (
        f"{name}: depends_on must wait for condition: service_healthy on "
        f"{', '.join(not_waiting)} (found {depends_on!r})"
    )


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_runs_its_module_from_the_project_image(services, name):
    service = relais_service(services, name)
    command = words(service.get("command") or [])
    assert command[:3] == ["python", "-m", f"services.{name}"], (
        f"{name}: command must be python -m services.{name}, found {command}"
    )
    build = service.get("build")
    context = build.get("context", ".") if isinstance(build, dict) else build
    assert context in (".", "./"), f"{name}: must be built from the repository's Dockerfile, found build={build!r}"


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instruction lines of the Dockerfile, comments and blank lines dropped."""
    path = ROOT / "Dockerfile"
    assert path.is_file(), f"{path} is missing"
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def instructions(dockerfile: list[str], keyword: str) -> list[list[str]]:
    return [line.split()[1:] for line in dockerfile if line.split()[0].upper() == keyword]


def test_the_image_is_a_slim_python(dockerfile):
    bases = [words[0] for words in instructions(dockerfile, "FROM")]
    assert bases and re.fullmatch(r"python:3\.1[1-9]-slim", bases[-1]), (
        f"the final image must start FROM python:3.x-slim (3.11 or newer), found {bases}"
    )


def test_the_dockerfile_installs_the_project_without_dev_extras(dockerfile):
    project = re.compile(r"""pip install\b.*\s["']?\.(\[[^\]]*\])?["']?(\s|$)""")  # `.` or `.[extras]`
    installs = [line for line in dockerfile if project.search(line)]
    assert installs, "the Dockerfile never runs `pip install .` (the project from pyproject.toml)"
    assert not any("[dev]" in line for line in installs), f"dev extras must stay out of the image: {installs}"


def test_the_image_carries_every_package_of_the_project(dockerfile):
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    copied = {source.rstrip("/") for words in instructions(dockerfile, "COPY") for source in words[:-1]}
    missing = [pattern.rstrip("*") for pattern in include if pattern.rstrip("*") not in copied]
    assert not missing, f"packages listed in pyproject.toml but never copied into the image: {missing}"


def test_the_services_do_not_run_as_root(dockerfile):
    users = [words[0] for words in instructions(dockerfile, "USER")]
    assert users and users[-1] not in ("root", "0"), f"the image must end with a non-root USER, found {users}"


def test_the_build_context_leaves_out_local_downloads():
    path = ROOT / ".dockerignore"
    assert path.is_file(), f"{path} is missing: the build context would carry .venv and .local"
    ignored = {line.strip().rstrip("/") for line in path.read_text().splitlines()}
    missing = [entry for entry in (".git", ".venv", ".local") if entry not in ignored]
    assert not missing, f".dockerignore must exclude {missing}"


def test_image_builds_the_same_commune_data_as_make_provision() -> None:
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r"^GEO_PACKAGE := (\S+)$", makefile, re.MULTILINE)
    assert found, "the Makefile names no GEO_PACKAGE"
    package = found.group(1)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"GEO_PACKAGE={package}" in dockerfile, "Dockerfile and Makefile build commune data from different packages"
    assert "RELAIS_ROUTING_GEODATA_FILE=" in dockerfile


BROKERS = ("kafka", "kafka-2", "kafka-3")


@pytest.fixture(scope="module")
def cluster_variables() -> dict[str, str]:
    assert CLUSTER_ENV.is_file(), f"{CLUSTER_ENV} is missing"
    return dotenv(CLUSTER_ENV)


def server_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_the_cluster_profile_runs_three_brokers_of_one_quorum(compose, services, cluster_variables, tmp_path):
    from ops.compose_secrets import write

    assert cluster_variables["COMPOSE_PROFILES"] == "cluster"
    assert "profiles" not in services["kafka"], "the first broker is the single broker too"
    assert [services[b].get("profiles") for b in BROKERS[1:]] == [["cluster"], ["cluster"]]
    option, voters = cluster_variables["RELAIS_KAFKA_QUORUM"].split()
    assert option == "--initial-controllers"
    parsed = [re.fullmatch(r"(\d+)@([\w-]+):9093:([\w-]{22})", voter) for voter in voters.split(",")]
    assert all(parsed), voters
    assert [(int(m.group(1)), m.group(2)) for m in parsed if m] == list(enumerate(BROKERS, start=1))
    assert len({m.group(3) for m in parsed if m}) == 3, "each controller has its own directory id"

    write(tmp_path)
    declared, volumes = compose.get("secrets") or {}, set(compose.get("volumes") or {})
    mounted_volumes = []
    for node_id, broker in enumerate(BROKERS, start=1):
        service = services[broker]
        source = next(
            (entry["source"] if isinstance(entry, dict) else entry)
            for entry in service["secrets"]
            if (entry.get("target") if isinstance(entry, dict) else entry) == "kafka-server.properties"
        )
        path = Path(interpolate(declared[source]["file"], cluster_variables))
        assert path.name == f"kafka-{node_id}-server.properties"
        props = server_properties((tmp_path / path.name).read_text())
        assert props["node.id"] == str(node_id)
        assert props["advertised.listeners"] == f"CLIENT://{broker}:9092"
        assert props["controller.quorum.bootstrap.servers"] == ",".join(f"{b}:9093" for b in BROKERS)
        assert props["offsets.topic.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
        assert environment(service, cluster_variables)["KAFKA_QUORUM"] == cluster_variables["RELAIS_KAFKA_QUORUM"]
        assert "$$KAFKA_QUORUM" in " ".join(words(service["command"])), f"{broker} formats without the quorum"
        volume = interpolate(service["volumes"][0], cluster_variables).split(":")[0]
        assert volume in volumes
        mounted_volumes.append(volume)
    assert len(set(mounted_volumes)) == 3 and "kafka-data" not in mounted_volumes, "the single broker's volume"

    # Without the variables: the single broker alone, a quorum of one, on its own configuration and volume.
    single = services["kafka"]
    assert environment(single)["KAFKA_QUORUM"] == "--standalone"
    assert interpolate(declared["kafka-server.properties"]["file"]) == ".local/compose/secrets/kafka-server.properties"
    assert interpolate(single["volumes"][0]).split(":")[0] == "kafka-data"
    assert all(not environment(services[b])["KAFKA_QUORUM"] for b in BROKERS[1:]), "never a cluster member alone"


def test_provisioning_replicates_every_topic_on_the_cluster(services, cluster_variables):
    command = words(services["kafka-provision"]["command"], cluster_variables)
    option = {command[i]: command[i + 1] for i in range(4, len(command) - 1, 2)}
    assert option["--bootstrap"].split(",") == [f"{b}:9092" for b in BROKERS]
    assert (option["--replication"], option["--min-insync-replicas"]) == ("3", "2")
    single = words(services["kafka-provision"]["command"])
    assert single[single.index("--bootstrap") + 1] == "kafka:9092"
    assert single[single.index("--replication") + 1] == "1"


@pytest.mark.parametrize("name", [*SETTINGS, "kafka-provision"])
def test_the_cluster_brokers_are_waited_for_only_when_they_run(services, name):
    depends_on = services[name]["depends_on"]
    for broker in BROKERS[1:]:
        assert depends_on[broker] == {"condition": "service_healthy", "required": False}, (name, broker)


@pytest.mark.parametrize("name", SETTINGS)
def test_services_reach_every_broker_of_the_cluster(services, cluster_variables, name, monkeypatch):
    for key, value in environment(relais_service(services, name), cluster_variables).items():
        monkeypatch.setenv(key, value)
    settings = SETTINGS[name]()
    assert settings.kafka_bootstrap.split(",") == [f"{b}:9092" for b in BROKERS]
    assert settings.topic_replication == 3, "dead-letter topics are replicated like the contract's"
