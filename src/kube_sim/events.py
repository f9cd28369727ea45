"""events.k8s.io/v1 Events are another view of core/v1 Events, as in the real API server.

kube_sim keeps every Event in core/v1 shape; these two functions convert at the edge, field
for field as ``pkg/apis/events/v1`` does, so a test reads the same Events whichever API the
plugin used to write them.
"""

from __future__ import annotations

from typing import Any

# events.k8s.io/v1 field -> core/v1 field (the rest have one name in both)
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_BACK = {core: new for new, core in _RENAMED.items()}


def to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out = {_RENAMED.get(k, k): v for k, v in obj.items()}
    out["apiVersion"] = "v1"
    return out


def from_core(obj: dict[str, Any]) -> dict[str, Any]:
    out = {_BACK.get(k, k): v for k, v in obj.items()}
    out["apiVersion"] = "events.k8s.io/v1"
    return out
