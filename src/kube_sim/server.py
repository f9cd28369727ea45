"""``KubeSim``: the test API server as tests and the dev wiring use it (see the package doc)."""

from __future__ import annotations

import builtins
import json
import ssl
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from kube_sim import rbac, resources
from kube_sim.errors import ApiError, bad_request
from kube_sim.faults import Faults
from kube_sim.http import KubeHTTPServer, RequestRecord
from kube_sim.resources import Resource
from kube_sim.store import Store
from kube_sim.tls import Certs, make_certs

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease")


def _resource(api_version: str, kind: str) -> Resource:
    res = resources.by_kind(api_version, kind)
    if res is None:
        raise bad_request(f"kube_sim does not serve {kind} in {api_version}")
    return res


class KubeSim:
    """A Kubernetes API server for tests on 127.0.0.1 (port 0), in background threads."""

    def __init__(
        self,
        *,
        tls: bool = False,
        tokens: Iterable[str] = (),
        namespaces: Iterable[str] = ("default",),
        version: str = "1.34",
        listen: tuple[str, int] = ("127.0.0.1", 0),
        watch_history: int = 2000,
    ) -> None:
        self.tls = tls
        self.store = Store(version, watch_history)
        self.git_version = f"v{version}.0"
        self._faults = Faults(set(tokens))
        self._rbac = rbac.Rbac()
        self._listen = listen
        self._namespaces = [*_SYSTEM_NAMESPACES, *namespaces]
        self._httpd: KubeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # the certificates outlive a restart (clients keep trusting the same CA) and are
        # removed with this object or at exit
        self._certs_dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: str | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> KubeSim:
        if self._httpd is not None:
            raise RuntimeError("kube_sim already started")
        for ns in self._namespaces:
            self.add_namespace(ns)
        context = None
        if self.tls:
            if self._certs_dir is None:
                self._certs_dir = tempfile.TemporaryDirectory(prefix="kube-sim-")
                make_certs(Path(self._certs_dir.name))
            certs = Certs.of(Path(self._certs_dir.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certs.cert_file, certs.key_file)
            self.ca_file = str(certs.ca_file)
        self._faults.stopping = False
        self._httpd = KubeHTTPServer(
            self._listen, self.store, self._faults, self._rbac, self.git_version, context
        )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-sim-http",
            daemon=True,
        )
        self._thread.start()
        # a restart (stop, then start) comes back on the same address with the same objects,
        # as an API server restarts with its etcd
        host, port = self._httpd.server_address[:2]
        self._listen = (str(host), int(port))
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        self._faults.stop()
        self.store.close_watches()
        if httpd is not None:
            httpd.shutdown()
            httpd.close_all_connections()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("kube_sim not started")
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request seen so far (a copy), oldest first."""
        if self._httpd is None:
            return []
        return list(self._httpd.requests)

    # -- clients -------------------------------------------------------------------------------

    def add_token(self, token: str) -> None:
        self._faults.tokens.add(token)

    def block(self, token: str, *, mode: str = "hang") -> None:
        self._faults.block(token, mode)

    def unblock(self, token: str) -> None:
        self._faults.unblock(token)

    def inject_error(
        self,
        code: int,
        *,
        token: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
        landed: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests (``times=-1``: all) with ``code``."""
        self._faults.inject(
            code,
            token=token,
            method=method,
            path_contains=path_contains,
            times=times,
            landed=landed,
        )

    def clear_injected_errors(self) -> None:
        self._faults.clear()

    def grant(
        self,
        token: str,
        rules: builtins.list[dict[str, Any]],
        *,
        namespace: str | None = None,
        user: str | None = None,
    ) -> None:
        """Limit ``token`` to these PolicyRules (in ``namespace``, or everywhere)."""
        grants = [rbac.Grant(namespace, rule) for rule in rules]
        self._rbac.grant(token, user or f"token:{token[:6]}", grants)

    def grant_from_manifests(
        self, token: str, manifests: Iterable[dict[str, Any]], service_account: str
    ) -> int:
        """Limit ``token`` to what these Roles/ClusterRoles and bindings give the
        ServiceAccount ``"namespace/name"``; returns how many rules that is."""
        grants = rbac.from_manifests(builtins.list(manifests), service_account)
        namespace, name = service_account.split("/", 1)
        self._rbac.grant(token, f"system:serviceaccount:{namespace}:{name}", grants)
        return len(grants)

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str = "default", token: str | None = None
    ) -> Path:
        """A kubeconfig (JSON is YAML) with one cluster, user and current context."""
        self.add_namespace(namespace)
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_file is not None:
            cluster["certificate-authority"] = self.ca_file
        user: dict[str, Any] = {"token": token} if token is not None else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-sim", "cluster": cluster}],
            "users": [{"name": "kube-sim", "user": user}],
            "contexts": [
                {
                    "name": "kube-sim",
                    "context": {"cluster": "kube-sim", "user": "kube-sim", "namespace": namespace},
                }
            ],
            "current-context": "kube-sim",
        }
        out = Path(path)
        out.write_text(json.dumps(config, indent=2) + "\n")
        out.chmod(0o600)
        return out

    # -- direct access for tests ------------------------------------------------------------------

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        res = _resource(obj.get("apiVersion", ""), obj.get("kind", ""))
        return self.store.create(res, (obj.get("metadata") or {}).get("namespace", ""), obj)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        try:
            return self.store.get(_resource(api_version, kind), namespace or "", name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = _resource(api_version, kind)
        return self.store.list(res, namespace, label_selector, field_selector)[0]

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        res = _resource(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        return self.store.update(res, meta.get("namespace", ""), meta.get("name", ""), obj)[0]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.store.delete(_resource(api_version, kind), namespace or "", name)

    def add_namespace(self, name: str) -> dict[str, Any]:
        existing = self.get("v1", "Namespace", name)
        if existing is not None:
            return existing
        return self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def add_node(
        self, name: str, *, provider_id: str | None = None, labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        spec = {"providerID": provider_id} if provider_id else {}
        meta: dict[str, Any] = {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        }
        return self.create({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec})

    def add_csinode(
        self, name: str, *, node_id: str, driver: str = "csi.oxide.computer"
    ) -> dict[str, Any]:
        driver_entry = {"name": driver, "nodeID": node_id, "topologyKeys": None}
        return self.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "CSINode",
                "metadata": {"name": name},
                "spec": {"drivers": [{k: v for k, v in driver_entry.items() if v is not None}]},
            }
        )

    def add_pvc(
        self, name: str, namespace: str, *, storage_class: str = "oxide", size: str = "1Gi"
    ) -> dict[str, Any]:
        self.add_namespace(namespace)
        return self.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": size}},
                },
            }
        )

    def events(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every Event stored, in core/v1 shape, in the order they were last written."""
        found = self.list("v1", "Event", namespace)
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))
