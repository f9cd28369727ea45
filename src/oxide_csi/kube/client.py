"""The Kubernetes API client: lightkube's async client, configured the usual ways.

In a pod, the service account (token file re-read when the kubelet rotates it, the cluster CA);
outside one, a kubeconfig file (``--kubeconfig`` or ``KUBECONFIG``). Every request the plugin
makes is bounded: ``timeout`` per request here, and shorter where a Lease renewal needs it.
"""

from __future__ import annotations

import httpx2
from lightkube import AsyncClient, ConfigError, KubeConfig

from oxide_csi.config_common import ConfigError as SettingError
from oxide_csi.kube.settings import KubeSettings

#: Seconds one API request may take, unless the caller bounds it more tightly.
REQUEST_TIMEOUT = 10.0
FIELD_MANAGER = "oxide-csi"


def kube_client(settings: KubeSettings, *, timeout: float = REQUEST_TIMEOUT) -> AsyncClient:
    """The client; a configuration that cannot be loaded is a start-up ConfigError (one line,
    exit 2), like every other setting."""
    source = settings.kubeconfig or "the pod's service account"
    try:
        if settings.kubeconfig is not None:
            config = KubeConfig.from_file(settings.kubeconfig)
        else:
            config = KubeConfig.from_service_account()
    except (ConfigError, OSError, KeyError, ValueError) as exc:
        raise SettingError(f"cannot load the Kubernetes configuration ({source}): {exc}") from None
    return AsyncClient(
        config,
        namespace=settings.namespace,
        timeout=httpx2.Timeout(timeout),
        field_manager=FIELD_MANAGER,
    )
