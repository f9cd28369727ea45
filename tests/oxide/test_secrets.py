"""The bearer token never reaches a log line, an exception message or a repr.

Errors of every kind are provoked over HTTP (refusals, retries, drops, stalls, deadlines,
ambiguous creates) with every logger at DEBUG; then the captured logs, the captured output
and ``str``/``repr`` of every exception (and of its ``last_error``) must not contain it.
"""

from __future__ import annotations

import logging

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from tests.oxide.conftest import ClientFactory
from tests.oxide.simkit import GIB, TOKEN, Sim, client_config, deadline_in


def _texts(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc)]
    last = getattr(exc, "last_error", None)
    if last is not None:
        out += [str(last), repr(last)]
    if exc.args:
        out += [str(a) for a in exc.args]
    return out


async def test_token_absent_from_logs_errors_and_reprs(
    sim: Sim,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = client_factory(sim, max_attempts=2)
    texts: list[str] = [repr(client), str(client), repr(client.config), str(client.config)]

    async def expect_failure(call: object) -> None:
        with pytest.raises(api_errors.OxideError) as caught:
            await call  # type: ignore[misc]
        texts.extend(_texts(caught.value))

    await client.get_project()
    await expect_failure(client.get_disk("missing"))
    sim.faults(error_rate=1.0, error_statuses=[503])
    await expect_failure(client.get_project())
    sim.faults(error_rate=0.0, rate_limit_rate=1.0)
    await expect_failure(client.get_project(deadline=deadline_in(0.05)))
    sim.faults(rate_limit_rate=0.0, drop_rate=1.0)
    await expect_failure(client.list_instances().__anext__())
    sim.faults(drop_rate=1.0, phase="after")
    await expect_failure(client.create_disk("leak-check", size=GIB))
    sim.faults(drop_rate=0.0, latency_ms=300, latency_rate=1.0)
    await expect_failure(client.get_project(deadline=deadline_in(0.05)))
    sim.no_faults()
    await expect_failure(client.attach_disk("instance-0", "leak-check"))

    wrong, _ = client_factory(sim, token=TOKEN + "x")
    await expect_failure(wrong.get_project())
    texts += [repr(wrong), repr(wrong.config)]

    out, err = capsys.readouterr()
    assert caplog.records, "DEBUG logging was expected to record the requests"
    for text in [*texts, caplog.text, out, err]:
        assert TOKEN not in text


async def test_token_echoed_by_the_server_is_redacted(sim: Sim, client: OxideClient) -> None:
    # The token is a valid name here, so the server's 404 message repeats it verbatim.
    with pytest.raises(api_errors.OxideNotFound) as caught:
        await client.get_disk(TOKEN)
    assert "<redacted>" in caught.value.message
    for text in _texts(caught.value):
        assert TOKEN not in text


def test_config_repr_hides_token() -> None:
    cfg = client_config("http://127.0.0.1:1")
    assert TOKEN not in repr(cfg)
    assert TOKEN not in str(cfg)
    assert "token" not in repr(cfg)
