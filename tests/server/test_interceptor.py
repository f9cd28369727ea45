"""The interceptor over real gRPC: the error table, INTERNAL with an error id, redaction."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import grpc
import pytest

from oxide_csi import errors
from oxide_csi.controller.oxide_failures import translate_escaped
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.logsetup import configure_logging
from oxide_csi.oxide import api_errors
from oxide_csi.server.error_codes import CODE_TABLE
from oxide_csi.server.interceptor import ErrorTranslator
from tests.server.inprocess import serving

SECRET = "s3cr3t-value-from-csi-secrets"
TOKEN = "oxide-token-abcdef0123456789abcdef"


class RaisingController(csi_pb2_grpc.ControllerServicer):
    """Raises whatever the test put in ``self.exc``; echoes secrets into its error message."""

    def __init__(self) -> None:
        self.exc: BaseException | None = None

    async def CreateVolume(self, request, context):
        if self.exc is not None:
            raise self.exc
        return csi_pb2.CreateVolumeResponse(
            volume=csi_pb2.Volume(volume_id="vol-1", capacity_bytes=1 << 30)
        )


@pytest.fixture
def logs() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    return stream


#: Each domain error and the code the CSI spec gives its situation, written out here rather
#: than read from the table under test, so that a wrong row in the table fails a test.
EXPECTED_CODES: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
}


def _ids(value: object) -> str:
    return getattr(value, "__name__", str(value))


def test_the_table_holds_exactly_the_expected_rows() -> None:
    """A row added to the table without an expectation here fails, as does one dropped."""
    assert set(CODE_TABLE) == set(EXPECTED_CODES)


async def _code_over_grpc(
    short_tmp: Path, exc: BaseException, translate: ErrorTranslator | None = None
) -> grpc.StatusCode:
    servicer = RaisingController()
    servicer.exc = exc

    def register(server: grpc.aio.Server) -> None:
        csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

    async with serving(short_tmp / "s.sock", [register], translate) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateVolume(csi_pb2.CreateVolumeRequest(name="pvc-1"), timeout=5)
    return info.value.code()


@pytest.mark.parametrize(("klass", "code"), list(EXPECTED_CODES.items()), ids=_ids)
async def test_every_domain_error_maps_to_its_spec_code(
    short_tmp: Path, logs: io.StringIO, klass: type[BaseException], code: grpc.StatusCode
) -> None:
    assert await _code_over_grpc(short_tmp, klass("domain said no")) == code
    line = _call_line(logs, "CreateVolume")
    assert line["code"] == code.name
    assert line["name"] == "pvc-1"
    assert isinstance(line["duration_ms"], float)


async def test_an_oxide_error_reaching_the_server_is_translated(short_tmp: Path) -> None:
    """The controller's translation hook runs before the table: a 404 from Oxide is NOT_FOUND,
    and without the hook (a node plugin has no Oxide client) it would be a bug: INTERNAL."""
    missing = api_errors.OxideNotFound("no disk", status=404, error_code="ObjectNotFound")
    hooked = await _code_over_grpc(short_tmp, missing, translate_escaped)
    assert hooked == grpc.StatusCode.NOT_FOUND
    assert await _code_over_grpc(short_tmp, missing) == grpc.StatusCode.INTERNAL


async def test_unexpected_exception_is_internal_with_logged_error_id(
    short_tmp: Path, logs: io.StringIO
) -> None:
    servicer = RaisingController()
    servicer.exc = RuntimeError("kaboom at line 42")

    def register(server: grpc.aio.Server) -> None:
        csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

    async with serving(short_tmp / "s.sock", [register]) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateVolume(csi_pb2.CreateVolumeRequest(name="pvc-2"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    details = info.value.details() or ""
    match = re.search(r"error id ([0-9a-f]{12})", details)
    assert match, details
    assert "kaboom" not in details  # internals stay in the log, not in the caller's face
    line = _call_line(logs, "CreateVolume")
    assert line["error_id"] == match.group(1)
    assert "kaboom at line 42" in str(line["exception"])


async def test_secrets_never_reach_logs_or_status(short_tmp: Path, logs: io.StringIO) -> None:
    servicer = RaisingController()
    servicer.exc = errors.InvalidArgument(f"bad secret {SECRET} with token {TOKEN}")

    def register(server: grpc.aio.Server) -> None:
        csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

    request = csi_pb2.CreateVolumeRequest(name="pvc-3", secrets={"password": SECRET})
    async with serving(short_tmp / "s.sock", [register]) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateVolume(request, timeout=5)
        servicer.exc = None
        await stub.CreateVolume(request, timeout=5)  # a successful call logs the request too
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert SECRET not in details and TOKEN not in details
    assert "<redacted>" in details
    output = logs.getvalue()
    assert SECRET not in output and TOKEN not in output
    debug_lines = [json.loads(x) for x in output.splitlines() if '"grpc request"' in x]
    assert debug_lines, "the request itself is logged at debug level"
    assert debug_lines[-1]["request"]["secrets"] == {"password": "<redacted>"}


def _call_line(logs: io.StringIO, method: str) -> dict[str, object]:
    for raw in reversed(logs.getvalue().splitlines()):
        entry = json.loads(raw)
        if entry.get("event") == "grpc call" and entry.get("method") == method:
            return entry  # type: ignore[no-any-return]
    raise AssertionError(f"no log line for {method}: {logs.getvalue()}")
