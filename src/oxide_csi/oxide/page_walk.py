"""Walking the API's paginated lists (dropshot's ``limit``/``page_token``/``next_page``).

The first request carries the scan parameters (``project``); each further one carries the
``page_token`` from the previous page's ``next_page``. We repeat the scan parameters with the
token: dropshot takes the scan from the token and ignores them, and a stricter server still sees
the project it needs. The walk ends on a page without ``next_page`` *or* on an empty page --
dropshot hands out a ``next_page`` with every full page, so the last page of an exact multiple of
``limit`` items is followed by an empty one. A server that repeats a token would loop forever;
that is detected and reported instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from oxide_csi.oxide.api_errors import OxideUnexpectedResponse
from oxide_csi.oxide.transport import Transport


async def paginate(
    transport: Transport,
    template: str,
    path: str,
    *,
    query: Mapping[str, str | int] | None = None,
    limit: int,
    deadline: float | None = None,
) -> AsyncIterator[Any]:
    """Yield the raw items of every page; each page request has the usual retries.

    ``deadline`` bounds the whole walk, not each page.
    """
    seen_tokens: set[str] = set()
    token: str | None = None
    while True:
        params: dict[str, str | int] = dict(query or {})
        params["limit"] = limit
        if token is not None:
            params["page_token"] = token
        page = await transport.request("GET", template, path, query=params, deadline=deadline)
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise OxideUnexpectedResponse(f"GET {template}: page has no 'items' list")
        items: list[Any] = page["items"]
        for item in items:
            yield item
        next_page = page.get("next_page")
        if not items or not isinstance(next_page, str) or not next_page:
            return
        if next_page in seen_tokens:
            raise OxideUnexpectedResponse(f"GET {template}: server repeated a page token")
        seen_tokens.add(next_page)
        token = next_page
