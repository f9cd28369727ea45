"""Label and field selectors: the parser and matcher, and lists filtered over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lightkube import AsyncClient
from lightkube import operators as op
from lightkube.resources.core_v1 import Node

from kube_sim import KubeSim
from kube_sim.errors import ApiError
from kube_sim.selectors import field_selector, label_selector

ATTACHABLE = "csi.oxide.computer/attachable"


def _obj(**labels: str) -> dict[str, object]:
    return {"metadata": {"name": "n", "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),  # != matches objects without the key
        ("a!=1", {"a": "1"}, False),
        ("a in (1, 2)", {"a": "2"}, True),
        ("a in (1,2)", {}, False),
        ("a notin (1,2)", {}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("!a", {}, True),
        ("a=1,b in (x),!c", {"a": "1", "b": "x"}, True),
        ("a=1,b in (x),!c", {"a": "1", "b": "x", "c": "y"}, False),
        ("a>3", {"a": "4"}, True),
        ("a<3", {"a": "x"}, False),
        (f"{ATTACHABLE}=true", {ATTACHABLE: "true"}, True),
    ],
)
def test_label_selector(selector: str, labels: dict[str, str], match: bool) -> None:
    assert label_selector(selector)(_obj(**labels)) is match


@pytest.mark.parametrize("bad", ["a=(", "a in 1", "bad key=1", "a=-x", "a>x", "=1"])
def test_bad_label_selector_is_400(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        label_selector(bad)
    assert err.value.code == 400


def test_field_selector() -> None:
    fields = ("metadata.name", "metadata.namespace", "spec.unschedulable")
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert field_selector("metadata.name=n1", fields)(node)
    assert field_selector("metadata.name!=n1", fields)(node) is False
    assert field_selector("spec.unschedulable=true,metadata.namespace=", fields)(node)
    with pytest.raises(ApiError) as err:
        field_selector("spec.providerID=x", fields)
    assert err.value.message == "field label not supported: spec.providerID"


async def test_node_lists_filtered_over_http(sim: KubeSim, client: AsyncClient) -> None:
    sim.add_node("cp", labels={"node-role.kubernetes.io/control-plane": "true"})
    sim.add_node("w1", labels={ATTACHABLE: "true"})
    sim.add_node("w2", labels={ATTACHABLE: "false"})

    async def names(**kw: Any) -> list[str]:
        return [
            n.metadata.name async for n in client.list(Node, **kw) if n.metadata and n.metadata.name
        ]

    assert await names(labels={ATTACHABLE: "true"}) == ["w1"]
    assert await names(labels={ATTACHABLE: op.not_equal("true")}) == ["cp", "w2"]
    assert await names(labels={ATTACHABLE: op.in_(["true", "false"])}) == ["w1", "w2"]
    assert await names(labels={ATTACHABLE: op.not_in(["true"])}) == ["cp", "w2"]
    assert await names(labels={ATTACHABLE: op.exists()}) == ["w1", "w2"]
    assert await names(labels={"node-role.kubernetes.io/control-plane": op.not_exists()}) == [
        "w1",
        "w2",
    ]
    assert await names(fields={"metadata.name": "w2"}) == ["w2"]


def test_unsupported_field_over_http_is_400(sim: KubeSim, http: httpx.Client) -> None:
    r = http.get("/api/v1/nodes", params={"fieldSelector": "spec.providerID=oxide://x"})
    assert (r.status_code, r.json()["reason"]) == (400, "BadRequest")
