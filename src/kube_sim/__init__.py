"""kube_sim: a small Kubernetes API server for tests, as ``oxide_sim`` is for Oxide.

It serves, over real HTTP(S), the objects and verbs the plugin uses, with the API server's
semantics: resourceVersion on every object, 409 Conflict on a stale update, 409 AlreadyExists,
404 NotFound, 422 Invalid (every stored object is validated against Kubernetes' own OpenAPI
schemas with ``kubernetes-validate``, plus the name and label rules the schemas leave out),
``Status`` error bodies, label and field selectors, watches, bearer-token auth and TLS. It
imports nothing of ``oxide_csi``; ``oxide_csi`` imports nothing of it. Only tests, the dev
wiring and benchmarks know both.

Public interface (kept stable; the plugin side codes against it)
-----------------------------------------------------------------
``from kube_sim import KubeSim``

``KubeSim(*, tls=False, tokens=(), namespaces=("default",), version="1.34",
listen=("127.0.0.1", 0), watch_history=2000)``
    ``tokens``: bearer tokens accepted; empty means no authentication (any or no token is
    let in, but a token sent is still seen by ``block``). With tokens set, a request without
    a known token answers 401 Unauthorized. ``namespaces`` are created at start (plus
    ``kube-system`` and ``kube-node-lease``); writing into a namespace that does not exist
    answers 404 like a real server. ``version``: the Kubernetes minor version whose schemas
    validate the objects and which ``/version`` reports. ``watch_history``: how many
    changes a watch may resume across before it gets 410 Expired.
``start() -> KubeSim`` (serves on 127.0.0.1, port 0, in its own threads), ``stop()``;
    also a context manager (``with KubeSim() as sim:``). ``stop()`` then ``start()`` is an
    API server restart: same URL, same objects, open watches and connections closed.
``url: str``            e.g. ``http://127.0.0.1:40123`` (``https://`` when tls).
``ca_file: str | None`` PEM of the CA that signed the server certificate (tls only; the
                        certificate names 127.0.0.1 and localhost).
``add_token(token)``    accept one more bearer token (one per simulated controller).
``write_kubeconfig(path, *, namespace="default", token=None) -> pathlib.Path``
    a kubeconfig that ``lightkube.KubeConfig.from_file`` loads: one cluster (server, and
    ``certificate-authority`` when tls), one user (the token, if any), one current context
    with that namespace. The namespace is created if missing.

Direct access for tests (same validation and resourceVersion rules as over HTTP; objects are
plain dicts in the API's JSON shape; ``api_version`` is ``"v1"``, ``"coordination.k8s.io/v1"``,
...):
``create(obj) -> dict``      apiVersion/kind of ``obj`` pick the resource; raises ``ApiError``.
``get(api_version, kind, name, namespace=None) -> dict | None``
``list(api_version, kind, namespace=None, label_selector=None, field_selector=None)
    -> list[dict]``
``update(obj) -> dict``      replace; a stale ``metadata.resourceVersion`` raises ApiError 409.
``delete(api_version, kind, name, namespace=None) -> None``
``add_namespace(name)``
``add_node(name, *, provider_id=None, labels=None) -> dict``       a core/v1 Node
``add_csinode(name, *, node_id, driver="csi.oxide.computer") -> dict``  storage.k8s.io/v1
``add_pvc(name, namespace, *, storage_class="oxide", size="1Gi") -> dict``
``events(namespace=None) -> list[dict]``
    every Event stored, oldest write first, in core/v1 shape (``involvedObject``,
    ``reason``, ``message``, ``type``, ...), whichever API wrote it: like a real server,
    ``v1`` Events and ``events.k8s.io/v1`` Events are two views of one store.
``requests: list[RequestRecord]``  every request seen (method, path, query, token, status),
    for tests that assert who wrote what.

Fault hooks, to cut one client off while it still reaches Oxide:
``block(token, *, mode="hang")``  every request carrying that bearer token fails as if the
    network were cut. ``"hang"``: no answer at all until ``unblock``/``stop``, then the
    connection is closed without an answer (a client sees its own timeout); ``"reset"``:
    the connection is closed at once without an answer. Open watches of that token go
    silent (hang) or are closed (reset).
``unblock(token)``
``inject_error(code, *, token=None, method=None, path_contains=None, times=1, landed=False)``
    the next ``times`` requests that match (all of token, method such as ``"POST"``, and a
    substring of the path; ``times=-1``: every one) are answered with an error ``Status`` of
    that code (429 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, 504 Timeout,
    409 Conflict, 403 Forbidden, ...) without doing anything; with ``landed=True`` the
    request is carried out first and only its answer is the error (an etcd timeout after
    the write).
``clear_injected_errors()``

RBAC, to run a client with exactly the permissions a chart gives it (tokens without grants
are cluster admins):
``grant(token, rules, *, namespace=None, user=None)``  limit the token to these PolicyRule
    dicts (``apiGroups``, ``resources``, ``verbs``, ``resourceNames``), in ``namespace`` or,
    when None, everywhere; other requests answer 403 Forbidden as the real authorizer words
    it. Calls add up.
``grant_from_manifests(token, manifests, service_account) -> int``  the same from rendered
    Role/ClusterRole/RoleBinding/ClusterRoleBinding dicts (e.g. ``tests.deploy.chart
    .render()``) for the ServiceAccount ``"namespace/name"``; returns the number of rules.

Errors raised by the direct-access methods: ``kube_sim.ApiError`` with ``.status`` (the
``Status`` dict: kind Status, apiVersion v1, status Failure, reason, code, message, details).

Resources served (verbs: get, list, watch, create, update (PUT), patch, delete)
--------------------------------------------------------------------------------
- ``v1``: ConfigMap (namespaced), Event (namespaced), Node, Namespace,
  PersistentVolumeClaim (namespaced), PersistentVolume
- ``coordination.k8s.io/v1``: Lease (namespaced)
- ``events.k8s.io/v1``: Event (namespaced; the same objects as v1 Events)
- ``storage.k8s.io/v1``: CSINode, StorageClass, VolumeAttachment

Semantics
---------
- ``metadata.resourceVersion``: one cluster-wide counter, a decimal string, new on every
  write. PUT or PATCH with a ``metadata.resourceVersion`` that is not the current one: 409
  Conflict; PUT without one: unconditional for ConfigMaps, Events, Nodes, PVCs (as the real
  server allows), 422 Invalid for Leases, CSINodes and VolumeAttachments (their strategies
  refuse unconditional updates: a Lease writer must name the version it replaces).
  PUT of a missing object: 404, except Leases and Events, which it creates (201), as their
  strategies allow. An update that changes nothing keeps the resourceVersion.
  DELETE honours ``DeleteOptions.preconditions`` (uid, resourceVersion): 409 on mismatch.
- The server sets ``metadata.uid``, ``creationTimestamp``, ``resourceVersion`` (and
  ``name`` from ``generateName``); it keeps them across updates. It does not set
  ``generation`` for these kinds (neither does the real server for ConfigMaps and Leases)
  nor ``managedFields``.
- PATCH: ``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json``
  (RFC 6902), ``application/strategic-merge-patch+json`` (lightkube's default; treated as
  a merge patch, which is exact for these kinds' maps and scalars). Apply patches: 415.
- Lease ``spec`` fields as coordination.k8s.io/v1 defines them: ``holderIdentity``,
  ``leaseDurationSeconds``, ``acquireTime`` and ``renewTime`` (MicroTime, RFC 3339 with
  microseconds, e.g. ``2026-12-02T18:05:00.123456Z``), ``leaseTransitions``. The server
  stores them as written; it never expires a lease (neither does the real one).
- list: ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``,
  ``>``, ``<``),
  ``fieldSelector`` (``metadata.name``, ``metadata.namespace``, and for Events
  ``involvedObject.*``/``regarding.*``, ``reason``, ``type``); an unsupported field label
  answers 400. The list's ``metadata.resourceVersion`` is the current counter; items
  carry no kind/apiVersion (as served); ``limit``/``continue`` page.
- watch (``?watch=1`` or ``watch=true`` on a list path, with the same selectors): chunked
  JSON lines ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR", "object": ...}``. Without a
  ``resourceVersion`` (or ``"0"``) it starts with ADDED for every current object; with one,
  it replays what happened after it, or sends ERROR 410 Expired when that is too old.
  ``timeoutSeconds`` ends the stream, as does ``stop()``.
- Errors are ``Status`` objects: 400 BadRequest, 401 Unauthorized, 404 NotFound, 405
  MethodNotAllowed, 409 Conflict / AlreadyExists, 415 UnsupportedMediaType, 422 Invalid,
  500 (create with a resourceVersion set, as the real server). ``dryRun`` requests answer
  400 (not served, rather than silently written).
- Discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``,
  ``/healthz``, ``/readyz``, ``/livez``.

Notes for clients (real API server rules that kube_sim enforces too)
--------------------------------------------------------------------
- MicroTime fields (Lease ``acquireTime``/``renewTime``, Event ``eventTime``) are parsed
  with Go's layout ``2006-01-02T15:04:05.000000Z07:00``: exactly six fractional digits.
  lightkube serialises a ``datetime`` whose microsecond is 0 as ``...:05Z`` (no fraction),
  which the real server refuses (400); format these times yourself or avoid microsecond 0.
- An Event about a cluster-scoped object (a Node) must live in namespace ``default``
  (or ``kube-system`` when ``eventTime`` is set); without ``eventTime``, one about a
  namespaced object (a PVC) must live in that object's namespace. Anything else answers
  422 (``ValidateEventCreate``).
  v1 Events with ``eventTime`` need ``reportingComponent``, ``reportingInstance``,
  ``action`` and ``reason``; events.k8s.io/v1 Events need ``eventTime``, ``type`` Normal
  or Warning and must not set the deprecated fields.
- To run the controller with the chart's permissions only:
  ``sim.grant_from_manifests(token, tests.deploy.chart.render({}),
  "kube-system/oxide-csi-controller")``; a verb the chart does not grant then answers 403
  exactly where a cluster would refuse it.
- Unknown fields are refused (400 "strict decoding error"), as with
  ``fieldValidation=Strict``; the real server's default (Warn) would silently drop them,
  which in a plugin would be silent data loss, so tests should see it.

Command line: ``python -m kube_sim --listen 127.0.0.1:0 [--tls] [--token T ...]
[--namespace NS] --kubeconfig-out PATH`` prints its URL on the first line of stdout and
serves until SIGTERM or SIGINT.
"""

from kube_sim.errors import ApiError
from kube_sim.http import RequestRecord
from kube_sim.server import KubeSim

__all__ = ["ApiError", "KubeSim", "RequestRecord"]
