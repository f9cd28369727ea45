"""Which generation of the Oxide API a rack serves, found out from the rack's own answer.

Why no flag: racks in the field run releases from v15 on, and an operator should not have to
know which one to configure the plugin right. Two generations matter for disks:

* ``UNVERSIONED`` (releases up to v17): Nexus ignores the ``api-version`` header, DiskCreate
  takes ``disk_source`` at its top level (no read-only disks, no local disks), and an instance
  takes 8 disks, boot disk counted;
* ``VERSIONED`` (v18 and later): the header is honoured, DiskCreate takes ``disk_backend``
  (distributed with a source that may be read-only, or local), and an instance takes 12 disks
  (boot disk counted, cloud-init disk not).

The probe asks ``GET /v1/me`` for an API version no rack serves. A versioned Nexus refuses it
with 400 "server does not support this API version"; an unversioned one ignores the header and
answers. The probe changes nothing on the rack and costs one request, once per process.
"""

from __future__ import annotations

from enum import StrEnum

from oxide_csi.oxide import api_errors
from oxide_csi.oxide.transport import Transport

#: Newer than any rack serves: a versioned Nexus must refuse it.
PROBE_API_VERSION = "9999999999.0.0"


class Generation(StrEnum):
    UNVERSIONED = "unversioned (release v17 or older)"
    VERSIONED = "versioned (release v18 or later)"

    @property
    def max_disks(self) -> int:
        """Disks per instance the rack allows, boot disk counted."""
        return 12 if self is Generation.VERSIONED else 8

    @property
    def disk_backend(self) -> bool:
        """DiskCreate takes ``disk_backend``, and with it read-only and local disks."""
        return self is Generation.VERSIONED


async def detect_generation(transport: Transport, *, deadline: float | None) -> Generation:
    """Ask the rack; transport failures (unreachable, bad token) propagate to the caller."""
    try:
        await transport.request(
            "GET",
            "/v1/me",
            "/v1/me",
            deadline=deadline,
            headers={"api-version": PROBE_API_VERSION},
        )
    except api_errors.OxideUnsupportedApiVersion:
        return Generation.VERSIONED
    return Generation.UNVERSIONED
