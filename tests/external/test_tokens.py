"""Task tokens: what a claim hands a worker, read back exactly, and anything else refused with the field named."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import UsageError
from dolmen.platform.external import TaskToken


def test_a_token_reads_back_as_it_was_made() -> None:
    """Encoding then parsing gives the same owner, version, queue entry, deadline and lease length."""
    for token in (TaskToken("worker:w1:abcd", 3, "1700000000000-0", 1_700_000_060_000, 30_000), TaskToken("w", 1, "", None, 500)):
        assert TaskToken.parse(token.encode()) == token


@pytest.mark.parametrize("text", [None, "", 42, "not a token", "eyJ9", "e30"])
def test_anything_else_is_a_usage_error_naming_the_token(text: object) -> None:
    """A missing, mangled or incomplete token is a 400 whose path is `token`."""
    with pytest.raises(UsageError) as raised:
        TaskToken.parse(text)
    assert raised.value.path == "token"
