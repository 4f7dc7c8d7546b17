"""The container and cluster files hold together: whatever one of them names, another defines.

No cluster or container engine runs here (make deploy checks each file's schema alone). Each
check below is a function from the loaded files to the problems it finds; the tests run it
on the files as committed, and on a copy broken on purpose, since a check that cannot fail
proves nothing.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from wasmwiz.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"

Manifest = dict[str, Any]
Selector = dict[str, Any]

# Who the network policies expect at the other end, outside WasmWiz's namespace: the
# namespaces named in networkpolicies.yaml, labelled as Kubernetes labels every namespace.
INGRESS_CONTROLLER = (
    {"kubernetes.io/metadata.name": "ingress-nginx"},
    {"app.kubernetes.io/name": "ingress-nginx"},
)
PROMETHEUS = (
    {"kubernetes.io/metadata.name": "monitoring"},
    {"app.kubernetes.io/name": "prometheus"},
)
DNS = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
# What the app refuses to call (docs/webhooks.md), and what it must reach: webhooks on any port.
PRIVATE = ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "fd00::1"]
PUBLIC = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
POSTGRESQL_PORT = 5432


def load_manifests() -> list[Manifest]:
    """Every object in deploy/kubernetes/ and its tools/."""
    paths = sorted(KUBERNETES.glob("*.yaml")) + sorted(KUBERNETES.glob("tools/*.yaml"))
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def operator_secrets() -> dict[str, dict[str, str]]:
    """The Secrets docs/operations.md tells the operator to create: their keys and values."""
    text = (ROOT / "docs" / "operations.md").read_text()
    made: dict[str, dict[str, str]] = {}
    for command in text.split("kubectl create secret generic ")[1:]:
        command = re.split(r"kubectl |```", command)[0]
        literals = re.findall(r"--from-literal=([\w.-]+)=(\"[^\"]*\"|'[^']*'|\S*)", command)
        made[command.split()[0]] = {key: value.strip("\"'") for key, value in literals}
    return made


@dataclass
class Pods:
    """A workload's pod template."""

    owner: str
    labels: dict[str, str]
    spec: dict[str, Any]
    claim_templates: set[str]

    @property
    def containers(self) -> list[dict[str, Any]]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def port(self, port: str | int) -> int | None:
        """The number of a container port named (or numbered) `port`, if the pods have it."""
        for container in self.containers:
            for declared in container.get("ports", []):
                if port in (declared.get("name"), declared["containerPort"]):
                    return int(declared["containerPort"])
        return None

    def port_name(self, number: int) -> str | None:
        for container in self.containers:
            for declared in container.get("ports", []):
                if declared["containerPort"] == number and "name" in declared:
                    return str(declared["name"])
        return None


def pod_templates(manifests: list[Manifest]) -> list[Pods]:
    found = []
    for manifest in manifests:
        kind, spec = manifest["kind"], manifest.get("spec", {})
        if kind == "Pod":
            template = manifest
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        elif kind in {"Deployment", "StatefulSet", "Job"}:
            template = spec["template"]
        else:
            continue
        claims = {claim["metadata"]["name"] for claim in spec.get("volumeClaimTemplates", [])}
        labels = template.get("metadata", {}).get("labels", {})
        owner = f"{kind}/{manifest['metadata']['name']}"
        found.append(Pods(owner, labels, template["spec"], claims))
    return found


def named(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return named(manifests, kind)[name]


def selects(selector: Selector | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


# --- What the pods name ---------------------------------------------------------------


def _env_sources(pods: Pods) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, reference) for every Secret and ConfigMap a pod's containers or volumes name."""
    for container in pods.containers:
        for source in container.get("envFrom", []):
            for kind in ("secretRef", "configMapRef"):
                if kind in source:
                    yield kind, source[kind]
        for variable in container.get("env", []):
            for kind, reference in variable.get("valueFrom", {}).items():
                yield kind, reference
    for volume in pods.spec.get("volumes", []):
        if "secret" in volume:
            yield "secretVolume", {"name": volume["secret"]["secretName"]}
        if "configMap" in volume:
            yield "configMapVolume", volume["configMap"]


def secrets_defined(
    manifests: list[Manifest], made: dict[str, dict[str, str]]
) -> dict[str, set[str]]:
    """Secrets in the manifests, the operator's (docs), and cert-manager's (Ingress TLS)."""
    defined = {name: set(made_keys) for name, made_keys in made.items()}
    for name, secret in named(manifests, "Secret").items():
        defined[name] = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    for ingress in named(manifests, "Ingress").values():
        annotations = ingress["metadata"].get("annotations", {})
        if {"cert-manager.io/cluster-issuer", "cert-manager.io/issuer"} & set(annotations):
            for tls in ingress["spec"].get("tls", []):
                defined[tls["secretName"]] = {"tls.crt", "tls.key"}
    return defined


def missing_secrets(manifests: list[Manifest], made: dict[str, dict[str, str]]) -> list[str]:
    defined = secrets_defined(manifests, made)
    problems = []
    for pods in pod_templates(manifests):
        for kind, ref in _env_sources(pods):
            if kind in {"secretRef", "secretVolume"} and ref["name"] not in defined:
                problems.append(f"{pods.owner}: no Secret {ref['name']}")
            if kind == "secretKeyRef" and ref["key"] not in defined.get(ref["name"], set()):
                problems.append(f"{pods.owner}: no key {ref['key']} in Secret {ref['name']}")
    for ingress in named(manifests, "Ingress").values():
        for tls in ingress["spec"].get("tls", []):
            if tls["secretName"] not in defined:
                problems.append(f"Ingress: no Secret {tls['secretName']}, and no cert-manager")
    return problems


def missing_config(manifests: list[Manifest]) -> list[str]:
    maps = {name: set(m.get("data", {})) for name, m in named(manifests, "ConfigMap").items()}
    problems = []
    for pods in pod_templates(manifests):
        for kind, ref in _env_sources(pods):
            if kind in {"configMapRef", "configMapVolume"} and ref["name"] not in maps:
                problems.append(f"{pods.owner}: no ConfigMap {ref['name']}")
            if kind == "configMapKeyRef" and ref["key"] not in maps.get(ref["name"], set()):
                problems.append(f"{pods.owner}: no key {ref['key']} in ConfigMap {ref['name']}")
    return problems


def missing_volumes(manifests: list[Manifest]) -> list[str]:
    claims = set(named(manifests, "PersistentVolumeClaim"))
    accounts = set(named(manifests, "ServiceAccount")) | {"default"}
    problems = []
    for pods in pod_templates(manifests):
        volumes = {volume["name"] for volume in pods.spec.get("volumes", [])}
        for volume in pods.spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{pods.owner}: no PersistentVolumeClaim {claim}")
        for container in pods.containers:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes | pods.claim_templates:
                    problems.append(f"{pods.owner}: mounts no volume {mount['name']}")
        account = pods.spec.get("serviceAccountName", "default")
        if account not in accounts:
            problems.append(f"{pods.owner}: no ServiceAccount {account}")
    return problems


# --- What selects what ------------------------------------------------------------------


def broken_services(manifests: list[Manifest]) -> list[str]:
    pods = pod_templates(manifests)
    services = named(manifests, "Service")
    problems = []
    for name, service in services.items():
        chosen = [
            p for p in pods if selects({"matchLabels": service["spec"]["selector"]}, p.labels)
        ]
        if not chosen:
            problems.append(f"Service {name} selects no pods")
        for target in (port.get("targetPort", port["port"]) for port in service["spec"]["ports"]):
            problems += [
                f"Service {name}: {p.owner} has no port {target}"
                for p in chosen
                if p.port(target) is None
            ]
    for set_name, stateful in named(manifests, "StatefulSet").items():
        if stateful["spec"].get("serviceName") not in services:
            problems.append(
                f"StatefulSet {set_name}: no Service {stateful['spec'].get('serviceName')}"
            )
    for kind in ("Deployment", "StatefulSet"):
        for workload_name, workload in named(manifests, kind).items():
            template_labels = workload["spec"]["template"]["metadata"]["labels"]
            if not selects(workload["spec"]["selector"], template_labels):
                problems.append(f"{kind} {workload_name}: its selector misses its own pods")
    for hpa in named(manifests, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in named(manifests, target["kind"]):
            problems.append(f"HorizontalPodAutoscaler: no {target['kind']} {target['name']}")
    for pdb_name, pdb in named(manifests, "PodDisruptionBudget").items():
        if not any(selects(pdb["spec"]["selector"], p.labels) for p in pods):
            problems.append(f"PodDisruptionBudget {pdb_name} selects no pods")
    return problems


def broken_ingresses(manifests: list[Manifest]) -> list[str]:
    services = named(manifests, "Service")
    problems = []
    for ingress in named(manifests, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                if service is None:
                    problems.append(f"Ingress: no Service {backend['name']}")
                    continue
                wanted = backend["port"].get("name", backend["port"].get("number"))
                ports = {port.get("name") for port in service["spec"]["ports"]}
                if wanted not in ports | {port["port"] for port in service["spec"]["ports"]}:
                    problems.append(f"Ingress: Service {backend['name']} has no port {wanted}")
        certified = {host for tls in ingress["spec"].get("tls", []) for host in tls["hosts"]}
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") not in certified:
                problems.append(f"Ingress: no certificate for {rule.get('host')}")
    return problems


def unknown_addresses(manifests: list[Manifest], made: dict[str, dict[str, str]]) -> list[str]:
    """The Services the documented Secret values name (REDIS_URL's host) exist, with that port."""
    services = named(manifests, "Service")
    problems = []
    for secret, values in made.items():
        for key, value in values.items():
            url = urlsplit(value)
            if url.scheme not in {"redis", "rediss"}:
                continue
            service = services.get(url.hostname or "")
            if service is None or url.port not in {p["port"] for p in service["spec"]["ports"]}:
                problems.append(f"{secret} {key}: no Service {url.hostname} with port {url.port}")
    return problems


def mixed_images(manifests: list[Manifest]) -> list[str]:
    """Every pod that runs WasmWiz runs the same image, so a release changes them together."""
    images = {
        container["image"]: pods.owner
        for pods in pod_templates(manifests)
        for container in pods.containers
        if container["image"].startswith("wasmwiz")
    }
    return [] if len(images) == 1 else [f"WasmWiz images differ: {images}"]


# --- Network policies: who may call whom --------------------------------------------------


def _rules(policies: list[Manifest], pods: Pods, direction: str) -> list[dict[str, Any]] | None:
    """The rules that apply to these pods in this direction; None when nothing restricts it."""
    applicable = []
    for policy in policies:
        spec = policy["spec"]
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if direction in types and selects(spec["podSelector"], pods.labels):
            applicable.append(policy)
    if not applicable:
        return None
    return [rule for policy in applicable for rule in policy["spec"].get(direction.lower(), [])]


def _port_allowed(rule: dict[str, Any], number: int, name: str | None, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        port.get("protocol", "TCP") == protocol and port.get("port", number) in (number, name)
        for port in ports
    )


def _peer_is_pod(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """A peer in the policy's own namespace (no namespaceSelector) that selects these labels."""
    if "ipBlock" in peer or "namespaceSelector" in peer:
        return False
    return selects(peer.get("podSelector"), labels)


def _peer_is_outside(peer: dict[str, Any], other: tuple[dict[str, str], dict[str, str]]) -> bool:
    namespace_labels, pod_labels = other
    return "namespaceSelector" in peer and (
        selects(peer["namespaceSelector"], namespace_labels)
        and selects(peer.get("podSelector"), pod_labels)
    )


def _allows(
    rules: list[dict[str, Any]] | None,
    peers_key: str,
    matches: Callable[[dict[str, Any]], bool],
    port: tuple[int, str | None, str],
) -> bool:
    if rules is None:
        return True
    return any(
        _port_allowed(rule, *port)
        and (peers_key not in rule or any(matches(peer) for peer in rule[peers_key]))
        for rule in rules
    )


def pod_to_pod(policies: list[Manifest], source: Pods, target: Pods, port: str | int) -> bool:
    number = target.port(port)
    if number is None:
        return False
    wire = (number, target.port_name(number), "TCP")
    egress = _rules(policies, source, "Egress")
    ingress = _rules(policies, target, "Ingress")
    return _allows(egress, "to", lambda peer: _peer_is_pod(peer, target.labels), wire) and _allows(
        ingress, "from", lambda peer: _peer_is_pod(peer, source.labels), wire
    )


def pod_to_outside(
    policies: list[Manifest],
    source: Pods,
    other: tuple[dict[str, str], dict[str, str]],
    port: int,
    protocol: str = "TCP",
) -> bool:
    egress = _rules(policies, source, "Egress")
    return _allows(egress, "to", lambda peer: _peer_is_outside(peer, other), (port, None, protocol))


def outside_to_pod(
    policies: list[Manifest],
    other: tuple[dict[str, str], dict[str, str]],
    target: Pods,
    port: str | int,
) -> bool:
    number = target.port(port)
    if number is None:
        return False
    ingress = _rules(policies, target, "Ingress")
    wire = (number, target.port_name(number), "TCP")
    return _allows(ingress, "from", lambda peer: _peer_is_outside(peer, other), wire)


def pod_to_address(policies: list[Manifest], source: Pods, address: str, port: int) -> bool:
    ip = ipaddress.ip_address(address)

    def in_block(peer: dict[str, Any]) -> bool:
        block = peer.get("ipBlock")
        return block is not None and (
            ip in ipaddress.ip_network(block["cidr"])
            and not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
        )

    return _allows(_rules(policies, source, "Egress"), "to", in_block, (port, None, "TCP"))


def database_addresses(policies: list[Manifest], server: Pods) -> list[str]:
    """An address in each range the server's policy opens PostgreSQL's port to.

    The range is the operator's to fill in; what the manifests can promise is that every pod
    that uses the database may reach the range the server does.
    """
    return [
        str(next(ipaddress.ip_network(peer["ipBlock"]["cidr"]).hosts()))
        for rule in _rules(policies, server, "Egress") or []
        if any(port.get("port") == POSTGRESQL_PORT for port in rule.get("ports", []))
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]


def network_problems(manifests: list[Manifest]) -> list[str]:
    policies = list(named(manifests, "NetworkPolicy").values())
    pods = pod_templates(manifests)
    problems = [
        f"NetworkPolicy {policy['metadata']['name']} selects no pods"
        for policy in policies
        if not any(selects(policy["spec"]["podSelector"], p.labels) for p in pods)
    ]
    for p in pods:
        if _rules(policies, p, "Ingress") is None or _rules(policies, p, "Egress") is None:
            problems.append(f"{p.owner}: no policy denies by default")

    server = _pods_of(manifests, "Deployment", "wasmwiz")
    redis = _pods_of(manifests, "StatefulSet", "redis")
    redis_port = find(manifests, "Service", "redis")["spec"]["ports"][0]["targetPort"]
    ingress_port = find(manifests, "Service", "wasmwiz")["spec"]["ports"][0]["targetPort"]
    metrics_port = "metrics"
    database = database_addresses(policies, server)
    if not database:
        problems.append(f"the server's policy opens port {POSTGRESQL_PORT} to no address range")
    # Each pod that reads DATABASE_URL reaches DNS and PostgreSQL; only the server reaches
    # Redis and the internet.
    for p in (p for p in pods if "DATABASE_URL" in _variables(p, manifests)):
        if not pod_to_outside(policies, p, DNS, 53, "UDP"):
            problems.append(f"{p.owner}: cannot reach DNS")
        if not all(pod_to_address(policies, p, address, POSTGRESQL_PORT) for address in database):
            problems.append(f"{p.owner}: cannot reach PostgreSQL")
        if p.owner != server.owner:
            if pod_to_pod(policies, p, redis, redis_port):
                problems.append(f"{p.owner}: may call Redis")
            if any(pod_to_address(policies, p, address, 443) for address in PUBLIC):
                problems.append(f"{p.owner}: may call the internet")
    if not pod_to_pod(policies, server, redis, redis_port):
        problems.append("the server cannot reach Redis")
    if not outside_to_pod(policies, INGRESS_CONTROLLER, server, ingress_port):
        problems.append("the ingress controller cannot reach the server")
    if not outside_to_pod(policies, PROMETHEUS, server, metrics_port):
        problems.append("Prometheus cannot scrape the server")
    for address in PUBLIC:
        for port in (443, 8443, 80):
            if not pod_to_address(policies, server, address, port):
                problems.append(f"the server cannot deliver webhooks to {address}:{port}")
    for address in PRIVATE:
        if pod_to_address(policies, server, address, 443):
            problems.append(f"the server may call {address}, which the app refuses")
    if any(pod_to_address(policies, redis, address, 443) for address in PUBLIC):
        problems.append("Redis may call the internet")
    return problems


def _pods_of(manifests: list[Manifest], kind: str, name: str) -> Pods:
    return next(p for p in pod_templates(manifests) if p.owner == f"{kind}/{name}")


def _variables(pods: Pods, manifests: list[Manifest]) -> set[str]:
    """The environment variables the pods' containers get, through env and envFrom."""
    made = secrets_defined(manifests, operator_secrets())
    maps = {name: set(m.get("data", {})) for name, m in named(manifests, "ConfigMap").items()}
    names: set[str] = set()
    for container in pods.containers:
        names |= {variable["name"] for variable in container.get("env", [])}
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names |= made.get(source["secretRef"]["name"], set())
            if "configMapRef" in source:
                names |= maps.get(source["configMapRef"]["name"], set())
    return names


# --- The Dockerfile and compose.yaml -------------------------------------------------------


def dockerfile_problems(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    stages: list[list[list[str]]] = []
    for instruction in instructions:
        if instruction[0].upper() == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    build, final = stages[0], stages[-1]
    problems = []
    lock = next(
        (i for i, (op, *arg) in enumerate(build) if op == "RUN" and "--require-hashes" in arg[0]),
        None,
    )
    sources = [
        i
        for i, (op, *arg) in enumerate(build)
        if op == "COPY" and re.search(r"(^|\s)\.?/?(src|client)\b", arg[0])
    ]
    if lock is None or "-r requirements/runtime.txt" not in build[lock][1]:
        problems.append("the build stage does not install the runtime lock with --require-hashes")
    elif not sources or min(sources) < lock:
        problems.append("src/ or client/ is copied before the lock is installed")
    users = [arg[0] for op, *arg in final if op == "USER"]
    user = users[-1].split(":")[0] if users else "0"
    if not user.isdigit() or int(user) == 0:
        problems.append(f"the image runs as {user!r}: a numeric non-root USER is needed")
    if any(
        op == "RUN" and re.search(r"apt-get install|gcc|build-essential", arg[0])
        for op, *arg in final
    ):
        problems.append("the runtime stage installs build tools")
    return problems


def compose_problems(compose: dict[str, Any]) -> list[str]:
    networks = compose.get("networks", {})
    problems = []
    for name, service in compose["services"].items():
        joined = service.get("networks")
        if not joined:
            problems.append(f"{name}: on no network named explicitly")
            continue
        problems += [f"{name}: network {n} is not declared" for n in joined if n not in networks]
        internal = all((networks.get(n) or {}).get("internal") for n in joined)
        if name in {"postgres", "redis"} and not internal:
            problems.append(f"{name}: reachable from outside the internal network")
        if service.get("ports") and internal:
            problems.append(f"{name}: publishes a port from an internal network only")
    return problems


# --- The tests ------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[list[Manifest]], list[str]]] = {
    "secrets": lambda manifests: missing_secrets(manifests, operator_secrets()),
    "config maps": missing_config,
    "volumes and accounts": missing_volumes,
    "services": broken_services,
    "ingresses": broken_ingresses,
    "addresses": lambda manifests: unknown_addresses(manifests, operator_secrets()),
    "images": mixed_images,
    "network policies": network_problems,
}


@pytest.mark.parametrize("check", list(CHECKS))
def test_what_the_manifests_name_they_define(check: str) -> None:
    assert CHECKS[check](load_manifests()) == []


_POD = "spec template spec"
_CRON_POD = "spec jobTemplate spec template spec"
# (check, object, path, value): each sets the value at the path (keys and list indexes,
# space-separated) in a copy of the manifests, which the check must then find wrong.
BREAKS = [
    ("secrets", "StatefulSet/redis", f"{_POD} containers 0 env 0 valueFrom secretKeyRef key", "PW"),
    (
        "secrets",
        "CronJob/wasmwiz-backup",
        f"{_CRON_POD} containers 0 env 0 valueFrom secretKeyRef name",
        "db",
    ),
    ("secrets", "Deployment/wasmwiz", f"{_POD} containers 0 envFrom 1 secretRef name", "env"),
    ("secrets", "Ingress/wasmwiz", "metadata annotations", {}),
    (
        "config maps",
        "Job/wasmwiz-migrate",
        f"{_POD} containers 0 envFrom 0 configMapRef name",
        "env",
    ),
    (
        "volumes and accounts",
        "CronJob/wasmwiz-backup",
        f"{_CRON_POD} volumes 0 persistentVolumeClaim claimName",
        "backups",
    ),
    (
        "volumes and accounts",
        "StatefulSet/redis",
        "spec volumeClaimTemplates 0 metadata name",
        "redis-data",
    ),
    ("volumes and accounts", "Deployment/wasmwiz", f"{_POD} serviceAccountName", "wasmwiz"),
    ("services", "Service/wasmwiz", "spec selector app.kubernetes.io/component", "web"),
    ("services", "Service/redis", "spec ports 0 targetPort", "resp"),
    ("services", "StatefulSet/redis", "spec serviceName", "redis-headless"),
    (
        "services",
        "PodDisruptionBudget/wasmwiz",
        "spec selector matchLabels app.kubernetes.io/component",
        "api",
    ),
    ("ingresses", "Ingress/wasmwiz", "spec rules 0 http paths 0 backend service name", "web"),
    ("ingresses", "Ingress/wasmwiz", "spec tls 0 hosts", ["wasmwiz.example.org"]),
    ("addresses", "Service/redis", "spec ports 0 port", 6380),
    ("images", "Job/wasmwiz-migrate", f"{_POD} containers 0 image", "wasmwiz:0.0.9"),
    (
        "ingresses",
        "Ingress/wasmwiz",
        "spec rules 0 http paths 0 backend service port",
        {"name": "https"},
    ),
    (
        "network policies",
        "NetworkPolicy/wasmwiz-redis",
        "spec ingress 0 from 0 podSelector matchLabels app.kubernetes.io/component",
        "api",
    ),
    (
        "network policies",
        "NetworkPolicy/wasmwiz-server",
        "spec egress 3 to 0 ipBlock except",
        ["169.254.0.0/16"],
    ),
    ("network policies", "NetworkPolicy/wasmwiz-server", "spec egress 3 ports", [{"port": 443}]),
    ("network policies", "NetworkPolicy/wasmwiz-server", "spec egress 1 ports 0 port", 6380),
    ("network policies", "NetworkPolicy/wasmwiz-server", "spec ingress 0 ports 0 port", 8000),
    ("network policies", "NetworkPolicy/wasmwiz-database-jobs", "spec egress", [{}]),
    (
        "network policies",
        "NetworkPolicy/wasmwiz-database-jobs",
        "spec egress 1 to 0 ipBlock cidr",
        "10.0.129.0/24",
    ),
    (
        "network policies",
        "NetworkPolicy/wasmwiz-default-deny",
        "spec podSelector matchLabels",
        {"app": "wasmwiz"},
    ),
    ("network policies", "Deployment/wasmwiz", f"{_POD} containers 0 ports 0 name", "web"),
]


@pytest.mark.parametrize(("check", "target", "path", "value"), BREAKS)
def test_each_check_finds_its_break(check: str, target: str, path: str, value: object) -> None:
    manifests = copy.deepcopy(load_manifests())
    node: Any = find(manifests, *target.split("/"))
    *parents, last = [int(step) if step.isdigit() else step for step in path.split()]
    for step in parents:
        node = node[step]
    node[last] = value
    assert CHECKS[check](manifests) != []


def _production_settings() -> Settings:
    """The ConfigMap and the operator's Secret, with a well-formed value for each secret key."""
    placeholders = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": "postgresql://wasmwiz:password@db.internal:5432/wasmwiz",
        "REDIS_URL": "redis://:password@redis:6379/0",
    }
    config = find(load_manifests(), "ConfigMap", "wasmwiz")["data"]
    values = {**config, **{key: placeholders[key] for key in operator_secrets()["wasmwiz"]}}
    return load_settings(generate_salt=False, **{k.lower(): v for k, v in values.items()})


def test_the_config_map_and_the_secret_make_a_production_configuration() -> None:
    settings = _production_settings()
    assert settings.is_production
    assert settings.redis_url
    assert settings.metrics_port


def test_the_ingress_takes_the_largest_body_the_app_does() -> None:
    annotations = find(load_manifests(), "Ingress", "wasmwiz")["metadata"]["annotations"]
    size = re.fullmatch(
        r"(\d+)([kmg]?)", annotations["nginx.ingress.kubernetes.io/proxy-body-size"].lower()
    )
    assert size
    limit = int(size[1]) * 1024 ** " kmg".index(size[2] or " ")
    assert limit >= _production_settings().effective_max_request_body_size


def test_the_dockerfile_installs_the_lock_before_the_source_and_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert dockerfile_problems(text) == []
    source_first = text.replace("COPY client ./client\nCOPY src ./src\n", "")
    source_first = source_first.replace(
        "COPY requirements/runtime.txt", "COPY src ./src\nCOPY requirements/runtime.txt"
    )
    assert dockerfile_problems(source_first) != []
    assert dockerfile_problems(text.replace("USER 10001:10001", "USER root")) != []
    assert dockerfile_problems(text.replace("USER 10001:10001\n", "")) != []


def test_compose_names_its_networks_and_keeps_the_stores_internal() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose_problems(compose) == []
    breaks: list[Callable[[dict[str, Any]], object]] = [
        lambda c: c["services"]["redis"].pop("networks"),
        lambda c: c["networks"]["backend"].pop("internal"),
        lambda c: c["services"]["postgres"]["networks"].append("frontend"),
        lambda c: c["services"]["app"]["networks"].remove("frontend"),
    ]
    for number, change in enumerate(breaks):
        broken = copy.deepcopy(compose)
        change(broken)
        assert compose_problems(broken) != [], number
