"""Leases as coordination.k8s.io/v1 defines them, and the optimistic concurrency that makes
one of two controllers lose a takeover race."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import httpx
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from kube_sim import KubeSim
from tests.kube_sim.conftest import NAMESPACE, TOKENS, lease_path


def _now() -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=now.microsecond or 1)  # see test_validation: never 0


async def test_lease_fields_round_trip(client: AsyncClient) -> None:
    now = _now()
    spec = LeaseSpec(
        holderIdentity="controller-a",
        leaseDurationSeconds=15,
        acquireTime=now,
        renewTime=now,
        leaseTransitions=0,
    )
    created: Any = await client.create(Lease(metadata=ObjectMeta(name="instance-1"), spec=spec))
    assert created.spec.holderIdentity == "controller-a"
    assert created.spec.renewTime == now and created.spec.acquireTime == now
    assert created.spec.leaseDurationSeconds == 15 and created.spec.leaseTransitions == 0
    later = now + datetime.timedelta(seconds=5)
    created.spec.renewTime = later
    renewed: Any = await client.replace(created)
    assert renewed.spec.renewTime == later
    assert int(renewed.metadata.resourceVersion) > int(created.metadata.resourceVersion)


def test_renew_time_is_stored_with_microseconds(http: httpx.Client) -> None:
    body = {
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "renewTime": "2026-12-02T18:05:00.000100Z"},
    }
    stored = http.post(lease_path(), json=body).json()
    assert stored["spec"]["renewTime"] == "2026-12-02T18:05:00.000100Z"


async def test_two_controllers_race_for_a_takeover_one_wins(sim: KubeSim, tmp_path: Path) -> None:
    """Both read the expired lease, both write themselves in: exactly one gets 409."""
    sim.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "instance-1", "namespace": NAMESPACE},
            "spec": {"holderIdentity": "old", "leaseDurationSeconds": 15, "leaseTransitions": 3},
        }
    )
    clients = [
        AsyncClient(
            config=KubeConfig.from_file(
                sim.write_kubeconfig(tmp_path / t, namespace=NAMESPACE, token=t)
            )
        )
        for t in TOKENS
    ]
    seen = [await c.get(Lease, "instance-1") for c in clients]

    async def take(c: AsyncClient, lease: Any, who: str) -> str:
        lease.spec.holderIdentity = who
        lease.spec.leaseTransitions = (lease.spec.leaseTransitions or 0) + 1
        lease.spec.acquireTime = lease.spec.renewTime = _now()
        try:
            await c.replace(lease)
        except ApiError as e:
            assert e.status.code == 409
            return "lost"
        return "won"

    results = await asyncio.gather(
        *(take(c, lease, t) for c, lease, t in zip(clients, seen, TOKENS, strict=True))
    )
    assert sorted(results) == ["lost", "won"]
    final = sim.get("coordination.k8s.io/v1", "Lease", "instance-1", NAMESPACE)
    assert final is not None and final["spec"]["leaseTransitions"] == 4
    assert final["spec"]["holderIdentity"] == TOKENS[results.index("won")]
    for c in clients:
        await c.close()


def test_lease_update_needs_a_resource_version(http: httpx.Client) -> None:
    """Leases refuse unconditional updates (AllowUnconditionalUpdate is false for them):
    a writer must say which version it replaces, so a stale holder cannot overwrite."""
    http.post(lease_path(), json={"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}})
    blind = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "b"}}
    r = http.put(lease_path("l"), json=blind)
    assert (r.status_code, r.json()["reason"]) == (422, "Invalid")
    assert r.json()["message"] == (
        'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: Invalid value: '
        "0x0: must be specified for an update"
    )
    patched = http.patch(  # a patch applies to the current version: no resourceVersion needed
        lease_path("l"),
        json={"spec": {"holderIdentity": "b"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert patched.json()["spec"]["holderIdentity"] == "b"


def test_put_creates_a_missing_lease(http: httpx.Client) -> None:
    """Leases allow create-on-update (their strategy's AllowCreateOnUpdate), ConfigMaps not."""
    r = http.put(lease_path("l"), json={"metadata": {"name": "l"}, "spec": {}})
    assert r.status_code == 201
    name_mismatch = http.put(lease_path("l"), json={"metadata": {"name": "other"}})
    assert name_mismatch.status_code == 400


def test_deleting_a_lease_with_a_stale_precondition_fails(http: httpx.Client) -> None:
    lease = http.post(lease_path(), json={"metadata": {"name": "l"}, "spec": {}}).json()
    http.patch(
        lease_path("l"),
        json={"spec": {"holderIdentity": "b"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    stale = {"preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}}
    assert http.request("DELETE", lease_path("l"), json=stale).status_code == 409
    assert http.request("DELETE", lease_path("l")).status_code == 200
