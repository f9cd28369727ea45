"""The Kubernetes side of the node memory benchmark: an API server over TLS for the node
plugin's graceful power-off (its heartbeat Lease and its watch for power-off requests).

Why TLS: that is how a node plugin reaches a real API server, and TLS is what costs memory
(the ``ssl`` module and OpenSSL, kept out of a node plugin that talks to nobody, see
``oxide_csi/ssl_gate.py``). The server is ``kube_sim`` (the project's test API server) in this
process; the node plugin gets a kubeconfig with the server's CA and a token, and the switches
the chart sets with ``gracefulPowerOff.enabled`` (``--graceful-power-off``, the kubernetes state
backend, its namespace). Its power-off command is ``true``: no request is ever made here, and
should one be, it must not power this machine off.
"""

from __future__ import annotations

import time
from pathlib import Path

from kube_sim import KubeSim

NAMESPACE = "oxide-csi"
TOKEN = "bench-node-token"  # noqa: S105 -- a test API server's, not a secret


class TlsApiServer:
    """``kube_sim`` over TLS, with a kubeconfig for the node plugin."""

    def __init__(self, work: Path) -> None:
        self.kube = KubeSim(tls=True, tokens=(TOKEN,), namespaces=(NAMESPACE,)).start()
        self.kubeconfig = self.kube.write_kubeconfig(
            work / "node-kubeconfig", namespace=NAMESPACE, token=TOKEN
        )

    def node_args(self) -> list[str]:
        """What the chart adds to the node plugin's command with graceful power-off on."""
        return [
            "--graceful-power-off",
            "--state-backend=kubernetes",
            f"--kubeconfig={self.kubeconfig}",
        ]

    def node_env(self) -> dict[str, str]:
        return {"POD_NAMESPACE": NAMESPACE, "OXIDE_CSI_POWER_OFF_COMMAND": "true"}

    def wait_running(self, timeout: float = 60.0) -> None:
        """Until the node plugin has written its heartbeat Lease and opened its watch."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            leases = self.kube.list("coordination.k8s.io/v1", "Lease", NAMESPACE)
            watching = any("watch=" in r.query for r in self.kube.requests)
            if leases and watching:
                return
            time.sleep(0.1)
        raise RuntimeError("the node plugin wrote no heartbeat or opened no watch over TLS")

    def activity(self) -> dict[str, int]:
        """What the node plugin asked of the API server (for the results)."""
        requests = self.kube.requests
        return {
            "api_requests": len(requests),
            "watches_opened": sum("watch=" in r.query for r in requests),
            "lease_writes": sum(
                r.method in ("PUT", "POST", "PATCH") and "/leases" in r.path for r in requests
            ),
        }

    def close(self) -> None:
        self.kube.stop()
