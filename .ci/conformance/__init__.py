"""Hold a simulator traffic log against the Oxide OpenAPI document (run by CI).

Why: the simulated Oxide and the plugin's Oxide client are both our own reading of the
API. If they drift the same way, every test stays green while the plugin breaks on a
real rack. So CI records every /v1 exchange of the test suite (``OXIDE_SIM_TRAFFIC_LOG``)
and this check demands that the simulator answers what the document promises and that
the plugin's client (User-Agent ``oxide-csi/...``) sends only what the document accepts.

Stricter than the document in three ways, all on purpose:
- objects may not carry properties the document does not list (the document leaves
  ``additionalProperties`` open): an extra field in a simulator answer is one the client
  could come to rely on although no rack sends it, and an extra field in a client request
  is one a rack ignores or refuses;
- a ``{resource}`` selector given by name needs ``project`` and one given by UUID must not
  have it, because Nexus answers 400 otherwise;
- the client must send an ``api-version`` header no newer than the document's version (the
  header is optional for Nexus, which then serves its newest version).

Coverage (``--require-endpoints``) counts only 2xx answers to the plugin's client.

Modules: ``schemas`` adapts the document's schemas for checking, ``messages`` words
validation errors, ``document`` routes paths and validates against the document,
``project_selectors`` holds the name-or-UUID selector rule, ``request_checks`` and
``response_checks`` judge each half of an exchange, ``entries`` judges one log entry and
``log_report`` a whole log, including coverage; ``releases`` picks the document of the
release the simulator played (older releases have their own). The command line is
``.ci/openapi_conformance.py``.
"""

from __future__ import annotations

from .document import Operation, Spec
from .entries import CLIENT_AGENT_PREFIX, check_entry
from .log_report import REQUIRED_OPERATIONS, Report, check_log
from .releases import load_release_specs, spec_for

__all__ = [
    "CLIENT_AGENT_PREFIX",
    "REQUIRED_OPERATIONS",
    "Operation",
    "Report",
    "Spec",
    "check_entry",
    "check_log",
    "load_release_specs",
    "spec_for",
]
