"""Pagination for ListVolumes and ListSnapshots.

The token names the first entry of the next page by its Oxide name, which is unique per project
and is the order the Oxide API lists in. Why a name and not an offset: an entry deleted between
two pages would shift every offset and make the CO skip an entry; with a name, the next page
simply starts at the first entry not before it. The token is wrapped (base64 of a versioned
string) so it stays opaque to the CO and so a token we did not issue is recognised and refused
with ABORTED, as the CSI specification asks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from oxide_csi.errors import Aborted, InvalidArgument

T = TypeVar("T")
_PREFIX = "oxide-csi/1:"


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode((_PREFIX + name).encode()).decode()


def decode_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Aborted(f"starting_token {token!r} was not issued by this plugin") from None
    if not text.startswith(_PREFIX) or len(text) == len(_PREFIX):
        raise Aborted(f"starting_token {token!r} was not issued by this plugin")
    return text[len(_PREFIX) :]


def page(
    entries: Sequence[T], key: Callable[[T], str], max_entries: int, starting_token: str
) -> tuple[list[T], str]:
    """One page of ``entries`` (sorted here by ``key``) and the token of the next, or ""."""
    if max_entries < 0:
        raise InvalidArgument("max_entries must not be negative")
    ordered = sorted(entries, key=key)
    if starting_token:
        start = decode_token(starting_token)
        ordered = [e for e in ordered if key(e) >= start]
    if max_entries == 0 or len(ordered) <= max_entries:
        return list(ordered), ""
    return list(ordered[:max_entries]), encode_token(key(ordered[max_entries]))
