"""The name and label syntax rules of apimachinery's ``util/validation`` that the OpenAPI
schemas do not carry (they only say "string"). Each check returns the list of messages a real
API server would give, empty when the value is fine, so callers can build field errors.
"""

from __future__ import annotations

import re

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(f"^{_QUALIFIED}$")
_LABEL_VALUE = re.compile(f"^({_QUALIFIED})?$")
_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _max_len(value: str, limit: int) -> list[str]:
    return [f"must be no more than {limit} characters"] if len(value) > limit else []


def _syntax(value: str, limit: int, pattern: re.Pattern[str], message: str) -> list[str]:
    return _max_len(value, limit) + ([] if pattern.match(value) else [message])


def dns1123_label(value: str) -> list[str]:
    return _syntax(
        value,
        63,
        _DNS1123_LABEL,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
        "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
        f"'123-abc', regex used for validation is '{_LABEL}')",
    )


def dns1123_subdomain(value: str) -> list[str]:
    return _syntax(
        value,
        253,
        _DNS1123_SUBDOMAIN,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character (e.g. "
        f"'example.com', regex used for validation is '{_LABEL}(\\.{_LABEL})*')",
    )


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix, '/', and a name."""
    prefix, sep, name = value.rpartition("/")
    if sep and not prefix:
        return ["prefix part must be non-empty"]
    if value.count("/") > 1:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or "
            f"'my.name',  or '123-abc', regex used for validation is '{_QUALIFIED}') with an "
            "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errs = [f"prefix part {m}" for m in dns1123_subdomain(prefix)] if sep else []
    if not name:
        errs.append("name part must be non-empty")
    else:
        errs += [f"name part {m}" for m in _max_len(name, 63)]
        if not _QUALIFIED_NAME.match(name):
            errs.append(
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                f"or '123-abc', regex used for validation is '{_QUALIFIED}')"
            )
    return errs


def label_value(value: str) -> list[str]:
    return _syntax(
        value,
        63,
        _LABEL_VALUE,
        "a valid label must be an empty string or consist of alphanumeric characters, "
        "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
        f"'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        f"'({_QUALIFIED})?')",
    )


def config_map_key(value: str) -> list[str]:
    errs = _syntax(
        value,
        253,
        _CONFIG_MAP_KEY,
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
        "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')",
    )
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs
