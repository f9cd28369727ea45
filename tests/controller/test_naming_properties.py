"""Properties of the disk and snapshot names the controller makes, for any CSI name.

Why properties: a CSI name is any string the CO chooses (Kubernetes sends ``pvc-<uuid>``, but
the spec allows any Unicode), and every one must become a name Oxide accepts, the same name on
every retry, and a disk whose 20-byte NVMe serial no other disk of ours shares. The rules below
are written from Oxide's ``Name`` type and the NVMe serial width, not from the code under test.
"""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from oxide_csi.controller import naming

#: Oxide's ``Name``: lower-case letter first, then letters, digits and dashes, not ending in a
#: dash, at most 63 characters (Nexus rejects upper case the OpenAPI pattern would admit).
OXIDE_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
UUID_LIKE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SERIAL = 20  # bytes of an NVMe serial the guest shows

csi_names = st.text(min_size=1, max_size=128)


def _valid(name: str) -> bool:
    return len(name) <= 63 and bool(OXIDE_NAME.match(name)) and not UUID_LIKE.match(name)


@given(csi_names)
def test_disk_names_are_valid_deterministic_and_hash_first(csi_name: str) -> None:
    name = naming.disk_name(csi_name)
    assert _valid(name), name
    assert naming.disk_name(csi_name) == name
    digest = hashlib.sha256(csi_name.encode()).hexdigest()[:16]
    assert name.encode()[:SERIAL] == f"csi-{digest}".encode()
    assert naming.is_managed_disk(name)


@given(csi_names, csi_names)
def test_distinct_csi_names_never_share_a_serial(a: str, b: str) -> None:
    if a != b:
        assert naming.disk_name(a).encode()[:SERIAL] != naming.disk_name(b).encode()[:SERIAL]


@given(csi_names)
def test_snapshot_names_are_valid_and_not_disks(csi_name: str) -> None:
    for name in (naming.snapshot_name(csi_name), naming.clone_snapshot_name(csi_name)):
        assert _valid(name), name
        assert not naming.is_managed_disk(name)
    assert naming.is_clone_snapshot(naming.clone_snapshot_name(csi_name))
    assert not naming.is_clone_snapshot(naming.snapshot_name(csi_name))


def test_a_kubernetes_name_keeps_a_readable_tail() -> None:
    pvc = "pvc-5f1c8a55-2a7e-4c55-9d61-0b6a3c1d2e4f"
    assert naming.disk_name(pvc) == "csi-d4fdfc08e2419f47-" + pvc[:42]
