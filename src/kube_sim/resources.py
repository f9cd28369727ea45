"""The resources kube_sim serves: where they live in the URL space and what their names obey.

A table, not code per kind: the store and the HTTP layer are generic over it. ``fields``
lists the field labels a ``fieldSelector`` may use (the real server refuses others with 400).
"""

from __future__ import annotations

from dataclasses import dataclass

_META_FIELDS = ("metadata.name", "metadata.namespace")
_EVENT_FIELDS = (
    *_META_FIELDS,
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
_EVENTS_V1_FIELDS = (
    *_META_FIELDS,
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
)


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    name_rule: str = "subdomain"  # "subdomain" (DNS-1123, 253) or "label" (DNS-1123, 63)
    fields: tuple[str, ...] = _META_FIELDS
    # another resource whose objects these are a view of (events.k8s.io Events are v1 Events)
    storage: str = ""
    # PUT of a missing object creates it (the strategy's AllowCreateOnUpdate: Leases, Events)
    create_on_update: bool = False
    # PUT without a resourceVersion overwrites (AllowUnconditionalUpdate); Leases, CSINodes
    # and VolumeAttachments refuse it with 422
    unconditional_update: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Where the objects are kept: one store per stored resource."""
        return self.storage or f"{self.plural}.{self.group}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "ConfigMap", "configmaps", namespaced=True),
    Resource(
        "", "v1", "Event", "events", namespaced=True, fields=_EVENT_FIELDS, create_on_update=True
    ),
    Resource("", "v1", "Namespace", "namespaces", namespaced=False, name_rule="label"),
    Resource(
        "", "v1", "Node", "nodes", namespaced=False, fields=(*_META_FIELDS, "spec.unschedulable")
    ),
    Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", namespaced=True),
    Resource("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False),
    Resource(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        namespaced=True,
        create_on_update=True,
        unconditional_update=False,
    ),
    Resource(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        namespaced=True,
        fields=_EVENTS_V1_FIELDS,
        storage="events.",
        create_on_update=True,
    ),
    Resource(
        "storage.k8s.io", "v1", "CSINode", "csinodes", namespaced=False, unconditional_update=False
    ),
    Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False),
    Resource(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        namespaced=False,
        unconditional_update=False,
    ),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def by_path(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def require(api_version: str, kind: str) -> Resource:
    res = by_kind(api_version, kind)
    if res is None:
        raise LookupError(f"{kind} in {api_version} is not served")
    return res


def groups() -> dict[str, list[str]]:
    """Each served API group (not the core group) and its versions, for discovery."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def in_group_version(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
