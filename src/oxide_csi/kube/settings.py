"""Where the controller's Kubernetes state lives and how long a Lease lasts.

Plain data, resolved once at start-up like the rest of the configuration (``config.py``), so a
controller with a missing namespace fails at start with one line, not on the first publish.

The Lease timings follow from one number, the lease duration D, and from the longest Oxide call
(the Oxide client's per-attempt timeout):

* the holder renews every D/6 and gives up (stops acting) when no renewal has succeeded for
  2D/3, the renew deadline, which is shorter than D;
* an Oxide change gets the time until the lease would expire as its deadline, and is refused
  when less than ``min(longest call, D - renew deadline)`` is left;
* another controller takes a Lease over only after it has seen no renewal for D plus the
  longest Oxide call: by then every call the old holder sent has ended.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

#: Where a pod finds its service account (token, CA, namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_LEASE_SECONDS = 30


class StateBackend(StrEnum):
    FILE = "file"
    KUBERNETES = "kubernetes"


class KubeSettingsError(ValueError):
    """A Kubernetes setting is missing or malformed (one line, no secret)."""


@dataclass(frozen=True)
class KubeSettings:
    namespace: str
    #: A kubeconfig file; None: in-cluster configuration (a pod's service account).
    kubeconfig: Path | None
    #: This process's name in Lease holders and Events: unique per process, so that a
    #: restarted controller never mistakes its predecessor's Lease for its own.
    identity: str
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    #: The longest one Oxide call may take (the Oxide client's per-attempt timeout).
    oxide_call_seconds: float = 30.0

    @property
    def renew_period(self) -> float:
        return self.lease_seconds / 6

    @property
    def renew_deadline(self) -> float:
        return self.lease_seconds * 2 / 3

    @property
    def min_change_seconds(self) -> float:
        return min(self.oxide_call_seconds, self.lease_seconds - self.renew_deadline)

    @property
    def takeover_after(self) -> float:
        return self.lease_seconds + self.oxide_call_seconds


def in_cluster(env: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").is_file()


def kube_settings(
    *,
    namespace: str | None,
    kubeconfig: str | None,
    lease_seconds: str | None,
    oxide_call_seconds: float,
    env: Mapping[str, str],
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
) -> KubeSettings:
    """Resolve the settings: flags first, then the environment, then the pod's service account.

    The namespace comes from ``--namespace``, ``POD_NAMESPACE`` (the chart sets it from the
    downward API), or the service account's namespace file. The configuration from
    ``--kubeconfig`` or ``KUBECONFIG``, else in-cluster.
    """
    ns = namespace or env.get("POD_NAMESPACE")
    if not ns:
        try:
            ns = (sa_dir / "namespace").read_text().strip()
        except OSError:
            ns = ""
    if not ns:
        raise KubeSettingsError(
            "the Kubernetes namespace for the controller's state is unknown: pass --namespace "
            "or set POD_NAMESPACE"
        )
    config = kubeconfig or env.get("KUBECONFIG")
    if not config and not in_cluster(env, sa_dir):
        raise KubeSettingsError(
            "no Kubernetes API configuration: not in a pod, and neither --kubeconfig nor "
            "KUBECONFIG is set"
        )
    try:
        lease = int(lease_seconds) if lease_seconds else DEFAULT_LEASE_SECONDS
    except ValueError:
        raise KubeSettingsError(
            f"lease duration must be whole seconds, got {lease_seconds!r}"
        ) from None
    if not 3 <= lease <= 3600:
        raise KubeSettingsError(f"lease duration must be 3..3600 seconds, got {lease}")
    pod = env.get("POD_NAME") or socket.gethostname()
    return KubeSettings(
        namespace=ns,
        kubeconfig=Path(config) if config else None,
        identity=f"{pod}_{uuid.uuid4().hex[:8]}",
        lease_seconds=lease,
        oxide_call_seconds=oxide_call_seconds,
    )
