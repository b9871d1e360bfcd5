"""Execution tags (platform/tags.py): parsing KEY=VALUE, the limits, and the messages that name the fix."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import UsageError
from dolmen.platform.tags import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, check_tags, matches, parse_filter, parse_tags


def test_tags_split_at_the_first_equals_sign_and_come_out_sorted_by_key() -> None:
    """`KEY=VALUE` splits at the first '=', so a value may hold '=' and spaces; the result is sorted by key."""
    assert parse_tags(["run=a=b c", "customer=acme", "customer=acme"]) == {"customer": "acme", "run": "a=b c"}
    assert list(parse_tags(["b=1", "a=2"])) == ["a", "b"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["customer"], "has no '='; write tags as KEY=VALUE"),
        (["=acme"], "key must not be empty"),
        (["customer="], "has an empty value; give it one, as in customer=VALUE"),
        (["cust omer=acme"], "holds ' '; a key is made of ASCII letters, digits and _ - . /"),
        (["k" * (MAX_TAG_KEY + 1) + "=v"], f"is {MAX_TAG_KEY + 1} characters, over the limit of {MAX_TAG_KEY}"),
        ([f"k={'v' * (MAX_TAG_VALUE + 1)}"], f"over the limit of {MAX_TAG_VALUE}; tag with an identifier"),
        (["k=a\nb"], "holds the control character"),
        (["k=1", "k=2"], "the tag 'k' is given twice (k=1 and k=2)"),
        ([f"k{i}=v" for i in range(MAX_TAGS + 1)], f"at most {MAX_TAGS} tags, not {MAX_TAGS + 1}"),
    ],
)
def test_a_bad_tag_is_refused_naming_what_is_wrong_and_the_fix(texts: list[str], message: str) -> None:
    """Each limit has its own message; the HTTP API names `tag` as the bad field."""
    with pytest.raises(UsageError) as refused:
        parse_tags(texts)
    assert message in str(refused.value) and refused.value.path == "tag"


def test_the_limits_themselves_are_accepted() -> None:
    """16 tags, a 64-character key and a 256-character value are within the limits."""
    tags = {f"k{i}": "v" for i in range(MAX_TAGS - 1)} | {"k" * MAX_TAG_KEY: "v" * MAX_TAG_VALUE}
    assert check_tags(tags) == dict(sorted(tags.items()))


def test_a_filter_keeps_the_order_given_and_matches_only_executions_with_every_tag() -> None:
    """The filter's first tag is the index read; an execution matches when it carries all of them."""
    wanted = parse_filter(["size=l", "color=red", "size=l"])
    assert wanted == [("size", "l"), ("color", "red")]
    assert matches({"color": "red", "size": "l", "x": "y"}, wanted)
    assert not matches({"color": "red"}, wanted) and not matches({"color": "blue", "size": "l"}, wanted)
