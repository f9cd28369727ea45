"""Request-field checks every CSI service shares."""

from __future__ import annotations

from oxide_csi.errors import InvalidArgument


def require(value: str, name: str) -> str:
    """``value``, or INVALID_ARGUMENT naming the field when the CO left it empty."""
    if not value:
        raise InvalidArgument(f"{name} is required")
    return value
