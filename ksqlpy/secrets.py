"""Which settings hold secrets, and how their values are shown: one masking rule for SHOW PROPERTIES,
statement texts (DESCRIBE/EXPLAIN, SHOW QUERIES, the command topic), logs and error messages.

A setting is sensitive when its name contains `password`, `secret` or `user.info`, is `sasl.jaas.config`,
or starts with `ssl.key` (ssl.key.password, ssl.key.pem, ssl.keystore.*), in any letter case.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

MASK = "[hidden]"

_SENSITIVE_NAME = re.compile(r"password|secret|user\.info|^sasl\.jaas\.config$|^ssl\.key", re.IGNORECASE)
# 'name' = 'value' pairs as SET and WITH (...) write them; '' inside a quoted literal is an escaped quote. A bare
# name starts only where a word does: trying every position inside a long word took time quadratic in its length.
_QUOTED_SETTING = re.compile(
    r"(?P<name>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![\w.])[\w.]+)(?P<equals>\s*=\s*)(?P<value>'(?:[^']|'')*')")


def is_sensitive(name: str) -> bool:
    return _SENSITIVE_NAME.search(name.strip()) is not None


def mask(name: str, value: Any) -> Any:
    """The value to show for setting `name`: MASK when the setting is sensitive, else the value itself."""
    return MASK if is_sensitive(name) else value


def masked(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {name: mask(name, value) for name, value in settings.items()}


def without_secrets(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that may be stored or shared: sensitive ones come from each process's own configuration."""
    return {name: value for name, value in settings.items() if not is_sensitive(name)}


def mask_statement(text: str) -> str:
    """The statement with the value of every sensitive `'name' = 'value'` setting (SET, WITH (...)) masked."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name").strip("'\"")
        if not is_sensitive(name):
            return match.group(0)
        return f"{match.group('name')}{match.group('equals')}'{MASK}'"

    return _QUOTED_SETTING.sub(replace, text)


def secret_values(settings: Mapping[str, Any]) -> set[str]:
    return {str(value) for name, value in settings.items() if value and is_sensitive(name)}


def redact(text: str, secrets: Collection[str]) -> str:
    """`text` (a log line, a client's error) with every secret value in it replaced by MASK."""
    # Longest first, so a secret that contains another is hidden whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
