"""One more look when Oxide says a name we just looked up is taken.

Creates are idempotent by name: each attempt first looks the object up and only POSTs when the
name is free. An earlier attempt that the CO cancelled (a timeout, a lost answer) may still
have its POST in flight, though, and that POST can land between this attempt's look-up and its
own POST. Oxide then answers 400 ``ObjectAlreadyExists`` to a request that is in fact ours; the
Oxide client resolves that by look-up only on its own retries, not on a first attempt. The CSI
specification keeps ALREADY_EXISTS for a *different* request under the same name, so such an
answer must not reach the CO as it is. Running the attempt once more makes its look-up find the
object and the usual compatibility checks decide: the same request returns it, a different one
is ALREADY_EXISTS as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from oxide_csi.oxide import api_errors

T = TypeVar("T")


async def again_if_taken(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, run a second time if Oxide refused a create because the name is taken.

    Only once: a second refusal (the object vanished and reappeared in between) is reported.
    """
    try:
        return await attempt()
    except api_errors.OxideAlreadyExists:
        return await attempt()
