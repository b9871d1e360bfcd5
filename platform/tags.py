"""Execution tags: `key=value` pairs an invocation carries, inherited by what it starts, listed by.

An execution's tags are recorded in its `created` event and state hash when
it is created and never change. Children of a workflow (join-set children,
direct calls, also those run inline), the executions it schedules and the
one it continues as carry the same tags: a tag names the work a request
started, wherever it went (README "Execution tags").

Each tag is also an index: `dolmen:{SHARD}:tag:KEY=VALUE`, a sorted set of
execution ids by creation time, sharded like the executions index and
written by the same outbox message (store/outbox.py), removed with the tree
(store/trees.py). So the tag's key and value are part of a Redis key: they
are bounded and may hold no control characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import UsageError

MAX_TAGS = 16
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
# Keys are names: ASCII letters, digits and `_ - . /`, so that `KEY=VALUE` splits at the first `=`.
_KEY = re.compile(r"[A-Za-z0-9_./-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXAMPLE = "e.g. customer=acme"


def _bad(message: str) -> UsageError:
    """A refused tag: the HTTP API names `tag` as the bad field."""
    return UsageError(message, path="tag")


def check_tag(key: str, value: str) -> None:
    """Refuse a tag whose key or value is empty, too long or made of characters a tag may not hold (`UsageError`)."""
    if not key:
        raise _bad(f"a tag's key must not be empty; write tags as KEY=VALUE, {_EXAMPLE}")
    if len(key) > MAX_TAG_KEY:
        raise _bad(f"the tag key '{key[:20]}...' is {len(key)} characters, over the limit of {MAX_TAG_KEY}; shorten it")
    if not _KEY.fullmatch(key):
        bad = next(c for c in key if not _KEY.fullmatch(c))
        raise _bad(
            f"the tag key {key!r} holds {bad!r}; a key is made of ASCII letters, digits and _ - . / ({_EXAMPLE})"
        )
    if not value:
        raise _bad(f"the tag '{key}' has an empty value; give it one, as in {key}=VALUE")
    if len(value) > MAX_TAG_VALUE:
        raise _bad(
            f"the value of tag '{key}' is {len(value)} characters, over the limit of {MAX_TAG_VALUE}; "
            "tag with an identifier, not with data"
        )
    found = _CONTROL.search(value)
    if found is not None:
        raise _bad(f"the value of tag '{key}' holds the control character {found.group()!r}; remove it")


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Validated tags, sorted by key; `UsageError` naming the first problem and its fix."""
    if len(tags) > MAX_TAGS:
        raise _bad(f"an execution may carry at most {MAX_TAGS} tags, not {len(tags)}; drop some")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise _bad(f"a tag is a string KEY=VALUE, not {key!r}: {value!r}; {_EXAMPLE}")
        check_tag(key, value)
    return dict(sorted(tags.items()))


def parse_tag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` as (key, value), split at the first `=`, checked."""
    key, sep, value = text.partition("=")
    if not sep:
        raise _bad(f"the tag {text!r} has no '='; write tags as KEY=VALUE, {_EXAMPLE}")
    check_tag(key, value)
    return key, value


def parse_tags(texts: Iterable[str]) -> dict[str, str]:
    """Tags to give an execution from `KEY=VALUE` texts; a key given twice is refused."""
    tags: dict[str, str] = {}
    for text in texts:
        key, value = parse_tag(text)
        if key in tags and tags[key] != value:
            raise _bad(f"the tag '{key}' is given twice ({key}={tags[key]} and {key}={value}); an execution has one value per key")
        tags[key] = value
    return check_tags(tags)


def parse_filter(texts: Iterable[str]) -> list[tuple[str, str]]:
    """Tags to list by, from `KEY=VALUE` texts, in the order given (the first is the index read)."""
    pairs = list(dict.fromkeys(parse_tag(text) for text in texts))
    if len(pairs) > MAX_TAGS:
        raise _bad(f"list by at most {MAX_TAGS} tags, not {len(pairs)}")
    return pairs


def member(key: str, value: str) -> str:
    """A tag as one string, `KEY=VALUE`: its index's name (see `Shards.tag`)."""
    return f"{key}={value}"


def members(tags: Mapping[str, str]) -> list[str]:
    """Each tag as its index member, `KEY=VALUE` (see `member`), in the mapping's order."""
    return [member(key, value) for key, value in tags.items()]


def matches(tags: Mapping[str, str], wanted: Iterable[tuple[str, str]]) -> bool:
    """Whether an execution's `tags` hold every wanted (key, value)."""
    return all(tags.get(key) == value for key, value in wanted)


__all__ = [
    "MAX_TAGS", "MAX_TAG_KEY", "MAX_TAG_VALUE", "check_tag", "check_tags", "matches", "member", "members",
    "parse_filter", "parse_tag", "parse_tags",
]  # fmt: skip
