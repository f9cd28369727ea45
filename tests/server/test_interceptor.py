"""The interceptor over real gRPC: the error table, INTERNAL with an error id, redaction."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import grpc
import pytest

from oxide_csi import errors
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.logsetup import configure_logging
from oxide_csi.oxide import api_errors
from oxide_csi.server.error_codes import CODE_TABLE
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


def _instance(klass: type[BaseException]) -> BaseException:
    if klass is api_errors.OxideUnexpectedState:
        return api_errors.OxideUnexpectedState(
            "faulted", kind="disk", resource="d", state="faulted"
        )
    if klass is api_errors.OxideTimeout:
        return api_errors.OxideTimeout("deadline passed")
    if issubclass(klass, api_errors.OxideError):
        return klass("oxide said no", status=400, error_code="X", request_id="r-1")
    return klass("domain said no")


@pytest.mark.parametrize(
    ("klass", "code"), list(CODE_TABLE.items()), ids=lambda v: getattr(v, "__name__", str(v))
)
async def test_every_table_entry_maps_to_its_code(
    short_tmp: Path, logs: io.StringIO, klass: type[BaseException], code: grpc.StatusCode
) -> None:
    servicer = RaisingController()
    servicer.exc = _instance(klass)

    def register(server: grpc.aio.Server) -> None:
        csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

    async with serving(short_tmp / "s.sock", [register]) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateVolume(csi_pb2.CreateVolumeRequest(name="pvc-1"), timeout=5)
    assert info.value.code() == code
    line = _call_line(logs, "CreateVolume")
    assert line["code"] == code.name
    assert line["name"] == "pvc-1"
    assert isinstance(line["duration_ms"], float)


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
