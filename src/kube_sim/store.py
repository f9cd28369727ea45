"""The object store: one lock, one resourceVersion counter, the API server's write rules.

Objects are kept as dicts in their stored shape (core/v1 for Events) and every read returns a
deep copy in the shape of the API asked (``view``), so no caller can change stored state by
accident. Every write is validated first (``validation.check``) and published to watches.
"""

from __future__ import annotations

import copy
import random
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from kube_sim import events, validation
from kube_sim import patch as patching
from kube_sim.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    field_invalid,
    invalid,
    not_found,
)
from kube_sim.resources import Resource, require
from kube_sim.selectors import field_selector, label_selector
from kube_sim.watch import HISTORY, Change, Hub, Watch

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet
_NAMESPACES = require("v1", "Namespace")
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def view(res: Resource, stored: dict[str, Any]) -> dict[str, Any]:
    """A copy in the shape of the API asked, with apiVersion and kind first as served."""
    obj = copy.deepcopy(stored)
    obj = events.from_core(obj) if res.storage else obj
    return {"apiVersion": obj.pop("apiVersion"), "kind": obj.pop("kind"), **obj}


def _to_stored(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    return events.to_core(obj) if res.storage else obj


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, kube_version: str, watch_history: int = HISTORY) -> None:
        self.kube_version = kube_version
        self._lock = threading.Lock()
        self._rv = 0
        self._objects: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        self._hub = Hub(watch_history)

    # -- reads -------------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            stored = self._table(res).get((namespace if res.namespaced else "", name))
            if stored is None:
                raise not_found(res.plural, name, res.group)
            return view(res, stored)

    def list(
        self,
        res: Resource,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """The matching objects sorted by namespace and name, and the list's resourceVersion."""
        match_labels, match_fields = label_selector(labels), field_selector(fields, res.fields)
        with self._lock:
            out = []
            for (ns, _), stored in sorted(self._table(res).items()):
                if namespace is not None and ns != namespace:
                    continue
                obj = view(res, stored)
                if match_labels(obj) and match_fields(obj):
                    out.append(obj)
            return out, str(self._rv)

    def watch(
        self,
        res: Resource,
        namespace: str | None,
        labels: str | None,
        fields: str | None,
        since: str | None,
    ) -> Watch:
        """Open a watch; without ``since`` (or "0") it begins with ADDED for what exists."""
        match_labels, match_fields = label_selector(labels), field_selector(fields, res.fields)
        w = Watch(res, namespace, lambda o: match_labels(o) and match_fields(o), view)
        with self._lock:
            if since in (None, "", "0"):
                for (ns, _), stored in sorted(self._table(res).items()):
                    if namespace is None or ns == namespace:
                        w.offer(
                            Change(
                                int(stored["metadata"]["resourceVersion"]), res.key, None, stored
                            )
                        )
            else:
                try:
                    start = int(since)
                except ValueError:
                    raise bad_request(f'invalid resource version "{since}"') from None
                self._hub.replay(w, start)
            self._hub.watches.append(w)
        return w

    def unwatch(self, w: Watch) -> None:
        with self._lock:
            if w in self._hub.watches:
                self._hub.watches.remove(w)

    def close_watches(self) -> None:
        with self._lock:
            self._hub.close_all()

    # -- writes ------------------------------------------------------------------------------

    def create(self, res: Resource, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        self._check_type(res, obj)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(res, namespace, meta)
        if meta.get("resourceVersion"):
            raise ApiError(
                500, "InternalError", "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(_NAME_CHARS) for _ in range(5))  # noqa: S311
            meta["name"] = meta["generateName"] + suffix
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            meta.pop(server_owned, None)
        if res.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        with self._lock:
            return self._insert(res, obj)

    def update(
        self, res: Resource, namespace: str, name: str, obj: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Replace an object; returns it and whether the PUT created it (Leases, Events)."""
        obj = copy.deepcopy(obj)
        self._check_type(res, obj)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(res, namespace, meta)
        if meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        meta["name"] = name
        with self._lock:
            old = self._table(res).get((meta.get("namespace", ""), name))
            if old is None:
                if not res.create_on_update:
                    raise not_found(res.plural, name, res.group)
                meta.pop("resourceVersion", None)
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = _now()
                return self._insert(res, obj), True
            return self._replace(res, old, obj), False

    def patch(
        self, res: Resource, namespace: str, name: str, content_type: str, body: Any
    ) -> dict[str, Any]:
        with self._lock:
            old = self._table(res).get((namespace if res.namespaced else "", name))
            if old is None:
                raise not_found(res.plural, name, res.group)
            patched = patching.apply(content_type, view(res, old), body)
            self._check_type(res, patched)
            meta = patched.setdefault("metadata", {})
            if meta.get("name") != name or meta.get("namespace", "") != old["metadata"].get(
                "namespace", ""
            ):
                raise bad_request(
                    "metadata.name and metadata.namespace cannot be changed by a patch"
                )
            return self._replace(res, old, patched)

    def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            table = self._table(res)
            key = (namespace if res.namespaced else "", name)
            old = table.get(key)
            if old is None:
                raise not_found(res.plural, name, res.group)
            meta = old["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                want = (preconditions or {}).get(field)
                if want is not None and want != meta[field]:
                    raise conflict(
                        res.plural,
                        name,
                        res.group,
                        f"Precondition failed: {label} in precondition: {want}, {label} in "
                        f"object meta: {meta[field]}",
                    )
            del table[key]
            if res.kind == "Namespace":
                for other in self._objects.values():
                    for k in [k for k in other if k[0] == name]:
                        del other[k]
            self._rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._hub.publish(Change(self._rv, res.key, old, gone, deleted=True))
            details = {"name": name, "group": res.group, "kind": res.plural, "uid": meta["uid"]}
            return {k: v for k, v in details.items() if v}

    # -- internals (callers hold the lock where it matters) ------------------------------------

    def _table(self, res: Resource) -> dict[ObjectKey, dict[str, Any]]:
        return self._objects.setdefault(res.key, {})

    @staticmethod
    def _check_type(res: Resource, obj: dict[str, Any]) -> None:
        for field, want in (("apiVersion", res.api_version), ("kind", res.kind)):
            have = obj.setdefault(field, want)
            if have != want:
                raise bad_request(
                    f"the {field} in the data ({have}) does not match the expected {field} ({want})"
                )

    @staticmethod
    def _check_namespace(res: Resource, namespace: str, meta: dict[str, Any]) -> None:
        if not res.namespaced:
            meta.pop("namespace", None)  # cleared, as rest.BeforeCreate/BeforeUpdate do
            return
        if meta.get("namespace", namespace) != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace

    def _validated(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """Check ``obj`` as sent and return it in stored shape (times normalised)."""
        validation.decode_times(res, obj)
        stored = _to_stored(res, obj)
        validation.check(res, obj, stored, self.kube_version)
        return stored

    def _insert(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self._validated(res, obj)
        meta = stored["metadata"]
        namespace = meta.get("namespace", "")
        if res.namespaced and ("", namespace) not in self._table(_NAMESPACES):
            raise not_found("namespaces", namespace)
        table = self._table(res)
        if (namespace, meta["name"]) in table:
            raise already_exists(res.plural, meta["name"], res.group)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        table[(namespace, meta["name"])] = stored
        self._hub.publish(Change(self._rv, res.key, None, stored))
        return view(res, stored)

    def _replace(self, res: Resource, old: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        meta, old_meta = obj["metadata"], old["metadata"]
        name = old_meta["name"]
        rv = meta.get("resourceVersion")
        if not rv and not res.unconditional_update:
            cause = {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 0x0: must be specified for an update",
                "field": "metadata.resourceVersion",
            }
            raise invalid(res.plural, name, res.group, [cause])
        if rv and rv != old_meta["resourceVersion"]:
            raise conflict(res.plural, name, res.group)
        if meta.get("uid", old_meta["uid"]) != old_meta["uid"]:
            cause = field_invalid("metadata.uid", meta["uid"], "field is immutable")
            raise invalid(res.kind, name, res.group, [cause])
        meta["uid"] = old_meta["uid"]
        meta["creationTimestamp"] = old_meta["creationTimestamp"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        stored = self._validated(res, obj)
        if stored == old:  # a no-op update keeps its resourceVersion, as the real server does
            return view(res, old)
        self._rv += 1
        stored["metadata"]["resourceVersion"] = str(self._rv)
        self._table(res)[(old_meta.get("namespace", ""), name)] = stored
        self._hub.publish(Change(self._rv, res.key, old, stored))
        return view(res, stored)
