"""The names an API server checks and the published schemas do not.

A chart can pass strict schema validation and still be refused by ``kubectl apply``: the
OpenAPI schemas say "string" where the API server's validation code says "at most 15
characters, lower case". Each rule below is written out from Kubernetes' own validation code
(``k8s.io/apimachinery/pkg/util/validation/validation.go`` for the primitives and
``pkg/apis/core/validation/validation.go`` and friends for where they apply), and checked on
every object the chart renders under several value sets, including a long release name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from kube_sim import names
from tests.deploy.chart import RENDER_CASES, Obj, containers, render

# ---- the primitives, as apimachinery's util/validation defines them --------------------------

_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")

Rule = Callable[[str], str | None]


def _first(problems: list[str]) -> str | None:
    return problems[0] if problems else None


# The DNS and label primitives are the test API server's (kube_sim), written from the same
# apimachinery code; the ones it has no use for are below.


def dns1123_label(value: str) -> str | None:
    """IsDNS1123Label: at most 63, lower-case alphanumerics and '-', alphanumeric at both ends."""
    return _first(names.dns1123_label(value))


def dns1035_label(value: str) -> str | None:
    """IsDNS1035Label: a DNS-1123 label that starts with a letter."""
    problem = dns1123_label(value)
    if problem is None and not value[:1].isalpha():
        problem = "a DNS-1035 label must start with a letter"
    return problem


def dns1123_subdomain(value: str) -> str | None:
    """IsDNS1123Subdomain: at most 253, dot-separated DNS-1123 labels."""
    return _first(names.dns1123_subdomain(value))


def path_segment_name(value: str) -> str | None:
    """IsValidPathSegmentName (RBAC object names): not '.', '..', no '/' or '%'."""
    if value in (".", "..") or "/" in value or "%" in value:
        return "not a valid path segment"
    return None


def qualified_name(value: str) -> str | None:
    """IsQualifiedName (label and annotation keys): [prefix/]name, name at most 63."""
    return _first(names.qualified_name(value))


def label_value(value: str) -> str | None:
    """IsValidLabelValue: empty, or at most 63 alphanumerics, '-', '_', '.' (alnum at ends)."""
    return _first(names.label_value(value))


def port_name(value: str) -> str | None:
    """IsValidPortName (an IANA_SVC_NAME, RFC 6335): at most 15 characters, lower-case
    letters, digits and '-', at least one letter, no '-' at either end and no '--'."""
    if len(value) > 15:
        return f"longer than 15 characters ({len(value)})"
    if not _PORT_NAME_CHARS.match(value):
        return "only lower-case letters, digits and '-' are allowed"
    if not re.search(r"[a-z]", value):
        return "must contain at least one letter"
    if value.startswith("-") or value.endswith("-") or "--" in value:
        return "no '-' at either end and no '--'"
    return None


def env_var_name(value: str) -> str | None:
    """IsEnvVarName (the strict form every supported Kubernetes accepts)."""
    return None if _ENV_VAR_NAME.match(value) else "not a valid environment variable name"


# ---- where each rule applies ------------------------------------------------------------------

#: metadata.name by kind: ValidateObjectMeta with the kind's name function.
NAME_RULES: dict[str, Rule] = {
    # core/validation ValidateServiceName = NameIsDNS1035Label
    "Service": dns1035_label,
    # apps/validation: ValidateDeploymentName, ValidateDaemonSetName = NameIsDNSSubdomain
    "Deployment": dns1123_subdomain,
    "DaemonSet": dns1123_subdomain,
    # core/validation: ValidateServiceAccountName, ValidateSecretName = NameIsDNSSubdomain
    "ServiceAccount": dns1123_subdomain,
    "Secret": dns1123_subdomain,
    "ConfigMap": dns1123_subdomain,
    # policy/validation: PodDisruptionBudget names = NameIsDNSSubdomain
    "PodDisruptionBudget": dns1123_subdomain,
    # storage/validation: StorageClass and CSIDriver names = DNS subdomain
    "StorageClass": dns1123_subdomain,
    "CSIDriver": dns1123_subdomain,
    # external-snapshotter's CRD: CRD objects' names are DNS subdomains (apiextensions)
    "VolumeSnapshotClass": dns1123_subdomain,
    # rbac/validation: ValidateRBACName = path.IsValidPathSegmentName
    "ClusterRole": path_segment_name,
    "ClusterRoleBinding": path_segment_name,
    "Role": path_segment_name,
    "RoleBinding": path_segment_name,
}


def _labels(where: str, labels: dict[str, str] | None) -> Iterator[tuple[str, str, Rule]]:
    """ValidateLabels (metav1 validation): keys are qualified names, values label values."""
    for key, value in (labels or {}).items():
        yield f"{where} label key {key!r}", key, qualified_name
        yield f"{where} label {key}={value!r}", str(value), label_value


def _annotation_keys(
    where: str, annotations: dict[str, str] | None
) -> Iterator[tuple[str, str, Rule]]:
    """ValidateAnnotations: keys are qualified names (lower-cased)."""
    for key in annotations or {}:
        yield f"{where} annotation key {key!r}", key.lower(), qualified_name


def _probe_ports(where: str, container: Obj) -> Iterator[tuple[str, str, Rule]]:
    """A probe's named port (httpGet/tcpSocket/grpc) must be a valid port name too."""
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        for handler in ("httpGet", "tcpSocket"):
            port = container.get(probe_name, {}).get(handler, {}).get("port")
            if isinstance(port, str):
                yield f"{where} {probe_name} port", port, port_name


def _pod(where: str, workload: Obj) -> Iterator[tuple[str, str, Rule]]:
    template = workload["spec"]["template"]
    yield from _labels(f"{where} pod template", template["metadata"].get("labels"))
    yield from _annotation_keys(f"{where} pod template", template["metadata"].get("annotations"))
    yield from _labels(f"{where} selector", workload["spec"]["selector"].get("matchLabels"))
    spec = template["spec"]
    port_names: list[str] = []
    for container in spec["containers"]:
        cname = container["name"]
        # core/validation validateContainers: ValidateDNS1123Label(container.Name)
        yield f"{where} container", cname, dns1123_label
        for port in container.get("ports", []):
            if "name" in port:
                # validateContainerPorts: IsValidPortName(port.Name)
                yield f"{where} container {cname} port", port["name"], port_name
                port_names.append(port["name"])
        for env in container.get("env", []):
            # validateEnv: IsEnvVarName(ev.Name)
            yield f"{where} container {cname} env", env["name"], env_var_name
        yield from _probe_ports(f"{where} container {cname}", container)
    # Container port names must be unique within the pod (validateContainerPorts).
    assert len(port_names) == len(set(port_names)), f"{where}: duplicate port names {port_names}"
    for volume in spec.get("volumes", []):
        # validateVolumes: ValidateDNS1123Label(vol.Name)
        yield f"{where} volume", volume["name"], dns1123_label


def checked_names(obj: Obj) -> Iterator[tuple[str, str, Rule]]:
    """(where, value, rule) for every name in ``obj`` that the API server validates."""
    kind = obj["kind"]
    meta = obj["metadata"]
    where = f"{kind}/{meta['name']}"
    yield f"{where} name", meta["name"], NAME_RULES[kind]
    if "namespace" in meta:
        yield f"{where} namespace", meta["namespace"], dns1123_label
    yield from _labels(where, meta.get("labels"))
    yield from _annotation_keys(where, meta.get("annotations"))
    if kind in ("Deployment", "DaemonSet"):
        yield from _pod(where, obj)
    if kind == "Service":
        yield from _labels(f"{where} selector", obj["spec"].get("selector"))
        for port in obj["spec"]["ports"]:
            # validateServicePort: the port's own name is a DNS-1123 label ...
            yield f"{where} port", port["name"], dns1123_label
            # ... and a named targetPort must be a valid port name (IANA_SVC_NAME).
            if isinstance(port.get("targetPort"), str):
                yield f"{where} targetPort", port["targetPort"], port_name
    if kind == "PodDisruptionBudget":
        yield from _labels(f"{where} selector", obj["spec"]["selector"].get("matchLabels"))


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_every_name_is_one_the_api_server_accepts(case: str) -> None:
    problems = [
        f"{where}: {value!r}: {problem}"
        for obj in RENDER_CASES[case].objects()
        for where, value, rule in checked_names(obj)
        if (problem := rule(value)) is not None
    ]
    assert problems == [], "\n".join(problems)


def test_named_service_ports_resolve_to_container_ports() -> None:
    """A Service's named targetPort must name a port of a container it selects."""
    objects = RENDER_CASES["everything on"].objects()
    workloads = [o for o in objects if o["kind"] in ("Deployment", "DaemonSet")]
    services = [o for o in objects if o["kind"] == "Service"]
    assert services
    for service in services:
        selector = service["spec"]["selector"].items()
        selected = [
            w for w in workloads if selector <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected, service["metadata"]["name"]
        for workload in selected:
            names = {p["name"] for c in containers(workload).values() for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in names, (workload["metadata"]["name"], port)


# ---- the rules themselves catch what the API server refuses -----------------------------------


@pytest.mark.parametrize(
    ("rule", "refused", "accepted"),
    [
        (port_name, "provisioner-http", "provision-http"),  # the bug a real API server found
        (port_name, "1234", "p1234"),
        (port_name, "Metrics", "metrics"),
        (port_name, "a--b", "a-b"),
        (dns1123_label, "x" * 64, "x" * 63),
        (dns1123_label, "Plugin", "plugin"),
        (dns1035_label, "1-metrics", "a-metrics"),
        (dns1123_subdomain, "a_b", "a.b"),
        (label_value, "v" * 64, ""),
        (qualified_name, "a/b/c", "example.com/b"),
        (env_var_name, "1VAR", "VAR_1"),
        (path_segment_name, "a/b", "a:b"),
    ],
)
def test_each_rule_refuses_what_kubernetes_refuses(rule: Rule, refused: str, accepted: str) -> None:
    assert rule(refused) is not None
    assert rule(accepted) is None


def test_a_release_name_at_helms_limit_still_fits() -> None:
    """Helm allows release names up to 53 characters; every name must still be valid."""
    release = "r" * 53
    problems = [
        f"{where}: {value!r}: {problem}"
        for obj in render({}, release=release)
        for where, value, rule in checked_names(obj)
        if (problem := rule(value)) is not None
    ]
    assert problems == [], "\n".join(problems)
