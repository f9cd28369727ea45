"""Word a schema validation error so a CI log reader can find the mistake.

Why: a failing union (``oneOf``/``anyOf``) reports only "is not valid under any of the given
schemas", which hides the field that is actually wrong; these helpers descend into the
branch the instance was meant to match and name the JSON path there.
"""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError

_CLIP = 180


def _where(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 3] + "..."


def _tag_miss(error: ValidationError) -> bool:
    """Whether a union branch failed on its tag (a one-value enum), i.e. is the wrong variant."""
    return (
        error.validator == "enum"
        and isinstance(error.validator_value, list)
        and len(error.validator_value) == 1
        and len(error.path) <= 1
    )


def describe(error: ValidationError) -> str:
    """Say where an instance fails, descending into the union branch it was meant to match."""
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            if sub.validator == "enum" and sub.validator_value == [None]:
                continue  # the null alternative added by schemas.adapt; never the interesting one
            branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
        tagged = [subs for subs in branches.values() if not any(map(_tag_miss, subs))]
        pool = tagged if tagged else list(branches.values())
        depth = [max(len(e.path) for e in subs) for subs in pool]
        if not pool or depth.count(max(depth)) != 1:
            break
        error = max(pool[depth.index(max(depth))], key=lambda e: len(e.path))
    return f"{_where(error)}: {_clip(error.message)}"
