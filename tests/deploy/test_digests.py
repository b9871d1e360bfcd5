"""`full_digest` and `digest_filter`: what a digest argument may be, and what each mistake answers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dolmen.platform.deploy.components import digest_filter, full_digest
from dolmen.platform.errors import NotFoundError, UsageError

A = "sha256:ab12" + "0" * 60
B = "sha256:ab34" + "1" * 60
C = "sha256:cd56" + "2" * 60


@dataclass(frozen=True)
class Component:
    digest: str


@dataclass(frozen=True)
class Revision:
    components: tuple[Component, ...]


class Revisions:
    """The two reads `full_digest` makes of a `DeploymentStore`: revision numbers, and each revision."""

    def __init__(self, *revisions: tuple[str, ...]) -> None:
        self._revisions = {n: Revision(tuple(Component(d) for d in ds)) for n, ds in enumerate(revisions, 1)}

    def numbers(self) -> list[int]:
        return list(self._revisions)

    def get(self, number: int) -> Revision:
        return self._revisions[number]


STORE = Revisions((A, C), (B,))


@pytest.mark.parametrize("given", ["ab12", "sha256:ab12", "AB12", "SHA256:Ab12", A])
def test_a_unique_prefix_in_either_case_names_the_whole_digest(given: str) -> None:
    assert full_digest(STORE, given) == A  # type: ignore[arg-type]


def test_a_prefix_of_several_components_names_them_and_asks_for_more() -> None:
    with pytest.raises(UsageError, match=r"ab matches 2 components \(sha256:ab12.*, sha256:ab34.*\); give more of the digest"):
        full_digest(STORE, "ab")  # type: ignore[arg-type]


def test_a_prefix_of_none_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no deployed component has digest ef"):
        full_digest(STORE, "ef")  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["", "sha256:", "zz", "sha512:ab12", "ab12 ", "sha256:" + "a" * 65])
def test_what_is_no_digest_is_a_usage_error_saying_what_one_is(given: str) -> None:
    with pytest.raises(UsageError, match=r"is not a component digest nor the start of one: give `sha256:` and hex digits") as caught:
        full_digest(STORE, given, field="--digest")  # type: ignore[arg-type]
    assert caught.value.path == "--digest"


def test_a_whole_digest_filters_even_when_no_revision_has_it_any_more() -> None:
    gone = "sha256:" + "9" * 64
    assert digest_filter(STORE, gone) == gone  # type: ignore[arg-type]
