"""compose/: the cluster file is checked for structure here (CI has no Docker engine).

It parses, names pinned images, wires every Sandcat instance to the PostgreSQL
service with that service's own credentials, its environment and TOML file
load as a valid Sandcat configuration, the cluster runs split by role (two
gateways, one api, one worker: docs/roles.md), the proxy routes /ws to the
gateways and HTTP to the api, takes bodies as large as the largest upload, keeps
/metrics private, only the proxy publishes a port (and Grafana, on loopback), and
Prometheus scrapes every instance, its alert rules and the Grafana dashboard name
only metrics the server exports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandcat.api.files import MULTIPART_SLACK_BYTES
from sandcat.blobs.s3 import parse_s3_url
from sandcat.cli import _parser
from sandcat.config import ENVIRONMENT, Config, load_config
from sandcat.roles import duties
from sandcat.store.backends import is_postgres

COMPOSE = Path(__file__).resolve().parent.parent / "compose"
#: The Sandcat services and the role each runs (docs/roles.md).
ROLES = {
    "sandcat-gateway-1": "gateway",
    "sandcat-gateway-2": "gateway",
    "sandcat-api": "api",
    "sandcat-worker": "worker",
}
INSTANCES = tuple(ROLES)
GATEWAYS = tuple(name for name, role in ROLES.items() if role == "gateway")
_VARIABLE = re.compile(r"\$\{([A-Z_]+)(?::\?[^}]*)?\}")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    assert set(document) >= {"services", "volumes"}
    found = document["services"]
    assert isinstance(found, dict)
    return found


def _env(service: dict[str, Any], substitutions: dict[str, str]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {
        str(k): _VARIABLE.sub(lambda m: substitutions[m.group(1)], str(v)) for k, v in env.items()
    }


def test_every_backend_and_three_instances_behind_a_proxy(services: dict[str, Any]) -> None:
    assert set(services) == {
        "postgres",
        "mongo",
        "redis",
        "kafka",
        "minio",
        "migrate",
        *INSTANCES,
        "proxy",
        "prometheus",
        "grafana",
    }


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        assert ":" in image, name
        assert not image.endswith(":latest"), name
    for name in (*INSTANCES, "migrate"):
        build = services[name]["build"]
        assert (COMPOSE / build["context"] / build["dockerfile"]).is_file()


def test_kafka_runs_kraft_without_zookeeper(services: dict[str, Any]) -> None:
    env = _env(services["kafka"], {})
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    assert not any("zookeeper" in name for name in services)


def test_instances_share_postgres_with_its_credentials(services: dict[str, Any]) -> None:
    pg = _env(services["postgres"], {})
    assert "synchronous_commit=on" in services["postgres"]["command"]
    expected = (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{pg['POSTGRES_DB']}"
    )
    for name in (*INSTANCES, "migrate"):
        service = services[name]
        env = _env(service, {})
        assert env["SANDCAT_DATABASE_URL"] == expected, name
        # Tokens issued by one instance verify on the others through the key
        # they share in PostgreSQL: no secret to configure by hand.
        assert "SANDCAT_TOKEN_SECRET" not in env
        assert set(env) <= set(ENVIRONMENT), f"{name}: unknown SANDCAT_* variable"
        # Live delivery between instances: the Kafka service's own listener.
        kafka = _env(services["kafka"], {})
        assert env["SANDCAT_KAFKA_BOOTSTRAP"] == kafka["KAFKA_ADVERTISED_LISTENERS"].removeprefix(
            "PLAINTEXT://"
        )
        # Files: shared S3 (MinIO) with the MinIO service's own credentials.
        minio = _env(services["minio"], {})
        assert env["SANDCAT_S3_URL"] == (
            f"s3://{minio['MINIO_ROOT_USER']}:{minio['MINIO_ROOT_PASSWORD']}@minio:9000/sandcat"
        )
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        if name in INSTANCES:
            assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
            # Session ends and READ_STATE pushes between instances: the Redis service.
            assert env["SANDCAT_REDIS_URL"] == "redis://redis:6379/0"
            assert service["depends_on"]["redis"]["condition"] == "service_healthy"
            # The inbox: the MongoDB service.
            assert env["SANDCAT_MONGO_URL"] == "mongodb://mongo:27017/sandcat"
            assert service["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert "./sandcat.toml:/etc/sandcat/sandcat.toml:ro" in service["volumes"]
        config = load_config(file=str(COMPOSE / "sandcat.toml"), env=env)
        assert is_postgres(config)
        parse_s3_url(config.backends.s3_url)
        assert config.server.public_ws_url == "ws://localhost:8080/ws"
    for name in INSTANCES:
        command = services[name]["command"]
        assert command[:3] == ["serve", "--host", "0.0.0.0"]  # noqa: S104 - in a container
        assert _role(services, name) == ROLES[name], name
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["migrate"]["command"][0] == "migrate"


def _role(services: dict[str, Any], name: str) -> str:
    """The role a service's command runs, as ``sandcat serve`` reads it."""
    service = services[name]
    args = _parser().parse_args(service["command"])
    assert args.config == "/etc/sandcat/sandcat.toml"
    env = _env(service, {})
    config = load_config(
        file=str(COMPOSE / "sandcat.toml"), env=env, overrides={"server.role": args.role}
    )
    duties(config)  # a split role is accepted: the cluster is on PostgreSQL
    return config.server.role


def test_the_cluster_runs_split_two_gateways_an_api_and_a_worker(
    services: dict[str, Any],
) -> None:
    sandcats = {name for name, s in services.items() if s.get("image") == "sandcat:dev"}
    assert sandcats - {"migrate"} == set(INSTANCES)
    roles = sorted(_role(services, name) for name in INSTANCES)
    assert roles == ["api", "gateway", "gateway", "worker"]
    # The role is on the command line, not left to a default.
    for name in INSTANCES:
        assert services[name]["command"][-2:] == ["--role", ROLES[name]]
        # Every role answers /healthz on the HTTP port the health check asks.
        assert "127.0.0.1:50001/healthz" in " ".join(services[name]["healthcheck"]["test"])


def test_no_secret_is_needed_by_hand() -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    assert "SANDCAT_TOKEN_SECRET" not in text


def test_only_the_proxy_publishes_a_port(services: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    # Grafana's port is on the host's loopback only.
    assert published == {"proxy": ["8080:8080"], "grafana": ["127.0.0.1:3000:3000"]}
    # The proxy fronts the gateways and the api; the worker serves no client.
    assert set(services["proxy"]["depends_on"]) == {*GATEWAYS, "sandcat-api"}


def test_the_proxy_routes_websocket_to_the_gateways_and_http_to_the_api() -> None:
    conf = (COMPOSE / "nginx.conf").read_text()
    upstreams = dict(re.findall(r"upstream (\w+) \{(.*?)\}", conf, re.S))
    assert set(upstreams) == {"sandcat_ws", "sandcat_http"}
    for upstream, port, role in (("sandcat_ws", 50000, "gateway"), ("sandcat_http", 50001, "api")):
        servers = re.findall(r"server ([\w-]+):(\d+)", upstreams[upstream])
        assert servers == [(name, str(port)) for name in INSTANCES if ROLES[name] == role]
    # /api (and /healthz, the web client) reach the api: nothing but /ws is a gateway's.
    assert "proxy_pass http://sandcat_http;" in _location_for(conf, "/api/v1/auth/login")
    assert "proxy_pass http://sandcat_http;" in _location_for(conf, "/healthz")
    assert "sandcat-worker" not in conf
    ws = re.search(r"location = /ws \{(.*?)\}", conf, re.S)
    assert ws is not None
    assert "proxy_pass http://sandcat_ws;" in ws.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws.group(1)
    assert "proxy_http_version 1.1;" in ws.group(1)
    assert "proxy_pass http://sandcat_http;" in conf
    assert "listen 8080;" in conf


def test_the_instances_trust_the_proxy_and_only_it(services: dict[str, Any]) -> None:
    proxy = services["proxy"]["networks"]["default"]["ipv4_address"]
    for name in INSTANCES:
        env = _env(services[name], {})
        config = load_config(file=str(COMPOSE / "sandcat.toml"), env=env)
        assert config.server.trusted_proxies == (proxy,)
    conf = (COMPOSE / "nginx.conf").read_text()
    # The proxy appends the address it saw to X-Forwarded-For, on both routes.
    assert conf.count("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") == 2


def test_the_image_serves_on_every_interface_as_an_unprivileged_user() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert "EXPOSE 50000 50001" in dockerfile
    assert "USER sandcat" in dockerfile
    assert '"--host", "0.0.0.0"' in dockerfile


_NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _nginx_size(value: str) -> int:
    found = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert found, value
    return int(found.group(1)) * _NGINX_UNITS[found.group(2).lower()]


def _instance_config(services: dict[str, Any]) -> Config:
    env = _env(services[INSTANCES[0]], {"SANDCAT_TOKEN_SECRET": "s" * 40})
    return load_config(file=str(COMPOSE / "sandcat.toml"), env=env)


def _locations(conf: str) -> dict[tuple[str, str], str]:
    """(modifier, path) -> the block of every location of the server."""
    return {
        (modifier, path): block
        for modifier, path, block in re.findall(
            r"location\s+(=|\^~|~\*?)?\s*(\S+)\s*\{(.*?)\}", conf, re.S
        )
    }


def _location_for(conf: str, uri: str) -> str:
    """The block nginx picks for ``uri``: an exact match, else the longest prefix
    (regex locations would come between; this file must have none)."""
    found = _locations(conf)
    assert not any(modifier.startswith("~") for modifier, _ in found), "regex location"
    if ("=", uri) in found:
        return found["=", uri]
    prefixes = [(path, block) for (modifier, path), block in found.items() if modifier != "="]
    _path, block = max(
        ((p, b) for p, b in prefixes if uri.startswith(p)), key=lambda item: len(item[0])
    )
    return block


def test_the_proxy_takes_the_largest_upload(services: dict[str, Any]) -> None:
    """A proxy limit below an upload limit would refuse uploads the server accepts."""
    conf = (COMPOSE / "nginx.conf").read_text()
    sizes = re.findall(r"client_max_body_size\s+(\S+);", conf)
    assert len(sizes) == 1, "one client_max_body_size, for the whole server"
    files = _instance_config(services).files
    largest = max(
        files.max_image_bytes,
        files.max_file_bytes,
        files.max_voice_bytes,
        files.max_video_bytes,
        files.max_avatar_bytes,
    )
    assert _nginx_size(sizes[0]) >= largest + MULTIPART_SLACK_BYTES, (sizes[0], largest)
    # Streamed to the instance as it arrives, not spooled by the proxy first.
    assert "proxy_request_buffering off;" in _location_for(conf, "/api/v1/files")


@pytest.mark.parametrize("uri", ["/metrics", "/metrics/", "/metrics.txt"])
def test_the_proxy_keeps_metrics_private(uri: str) -> None:
    block = _location_for((COMPOSE / "nginx.conf").read_text(), uri)
    assert re.search(r"deny all;|return 40[34];|internal;", block), block
    assert "proxy_pass" not in block
    assert "proxy_pass http://sandcat_http;" in _location_for(
        (COMPOSE / "nginx.conf").read_text(), "/healthz"
    )


def test_kafka_keeps_its_log_on_its_volume(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = _env(kafka, {})
    mounts = {volume.split(":", 1)[1] for volume in kafka["volumes"]}
    assert env["KAFKA_LOG_DIRS"] in mounts
    assert env["CLUSTER_ID"], "a fixed id, so the formatted log survives a restart"


def test_migrate_waits_for_every_store_it_touches(services: dict[str, Any]) -> None:
    """``sandcat migrate`` writes PostgreSQL's schema and, with a MongoDB, its indexes."""
    migrate = services["migrate"]
    env = _env(migrate, {"SANDCAT_TOKEN_SECRET": "s" * 40})
    touched = {
        re.sub(r"^\w+://(?:[^@/]*@)?([\w-]+).*$", r"\1", env[variable])
        for variable in ("SANDCAT_DATABASE_URL", "SANDCAT_MONGO_URL")
        if env.get(variable)
    }
    assert touched == {"postgres", "mongo"}
    for store in touched:
        assert migrate["depends_on"][store]["condition"] == "service_healthy", store


# -- metrics: Prometheus, its alert rules and the Grafana dashboard ---------------------

_FUNCTIONS = {
    "sum", "max", "by", "rate", "increase", "histogram_quantile", "min_over_time", "and", "le",
    "instance", "route", "status", "code", "op", "transport", "backend", "kind", "generation",
    "job", "up",
}  # fmt: skip


def _families() -> set[str]:
    """Every family name a server exports (the registry of a real composition)."""
    import trio

    from sandcat.metrics import WATCHED, ServerMetrics
    from sandcat.process_metrics import watch_gc, watch_process

    metrics = ServerMetrics.create()
    watch_process(metrics.registry)

    async def gc_family() -> None:
        async with watch_gc(metrics.registry):
            pass

    trio.run(gc_family)
    for name in WATCHED:
        metrics.watch(name, lambda: 0)
    return set(re.findall(r"^# TYPE (\S+)", metrics.registry.render(), re.M))


def _metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r'\{[^}]*\}|\[[^]]*\]|"[^"]*"', "", expr)
    words = set(re.findall(r"[a-z_][a-z0-9_]*", without_labels))
    return {w.removesuffix("_bucket") for w in words - _FUNCTIONS}


def test_prometheus_scrapes_every_instance_and_loads_the_alert_rules(
    services: dict[str, Any],
) -> None:
    conf = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"{name}:50001" for name in INSTANCES]
    mounts = services["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert conf["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_alert_rules_name_only_metrics_the_server_exports() -> None:
    families = _families()
    rules = yaml.safe_load((COMPOSE / "alerts.yml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 6
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert _metric_names(rule["expr"]) <= families | {"up"}, rule["alert"]


def test_the_grafana_dashboard_is_provisioned_and_graphs_exported_metrics(
    services: dict[str, Any],
) -> None:
    import json

    families = _families()
    mounts = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/sandcat.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = json.loads((COMPOSE / "grafana/dashboards/sandcat.json").read_text())
    graphed = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["datasources"][0]["uid"]
            names = _metric_names(target["expr"])
            assert names <= families, (panel["title"], names - families)
            graphed |= names
    # The families an operator graphs first are all on it.
    assert {
        "sandcat_http_requests_total",
        "sandcat_http_request_seconds",
        "sandcat_ws_closes_total",
        "sandcat_send_ack_seconds",
        "process_resident_memory_bytes",
        "python_gc_pause_seconds",
        "sandcat_outbox_pending_rows",
        "sandcat_connections",
        "sandcat_open_sockets",
        "sandcat_registered_users",
        "sandcat_active_sessions",
    } <= graphed
