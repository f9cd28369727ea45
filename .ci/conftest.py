"""Fixtures of the OpenAPI conformance check's tests: the document and the loaded ``Spec``.

Why: the OpenAPI document is required; without it the check proves nothing, so a missing
document fails the tests instead of skipping them. .ci is no installed package, so its
folder is put on sys.path here for the tests to import ``conformance``, ``sample_traffic``
and the ``openapi_conformance`` command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from conformance import Spec  # noqa: E402

DEFAULT_DOCUMENT = HERE.parent.parent / "shared" / "oxide-api" / "oxide-openapi.json"


@pytest.fixture(scope="module")
def document_path() -> Path:
    return Path(os.environ.get("OXIDE_OPENAPI", str(DEFAULT_DOCUMENT)))


@pytest.fixture(scope="module")
def spec(document_path: Path) -> Spec:
    if not document_path.is_file():
        pytest.fail(f"the Oxide OpenAPI document is missing at {document_path} (set OXIDE_OPENAPI)")
    return Spec.load(document_path)
