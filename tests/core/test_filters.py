"""Filter evaluation: LIKE without backtracking, and bad filters refused with a 400."""

from __future__ import annotations

import random
import re

import pytest

from geobatch.wire import errors
from geobatch_core import filters

pytestmark = pytest.mark.unit


def _regex_like(pattern: str, text: str) -> bool:
    """The old implementation (a backtracking regex), anchored with fullmatch (the old ``$`` also
    matched before a final newline): the reference for what LIKE means."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None


def test_like_means_what_the_regex_meant() -> None:
    rng = random.Random(14)
    for _ in range(5000):
        pattern = "".join(rng.choice("ab%_") for _ in range(rng.randint(0, 7)))
        text = "".join(rng.choice("abAB\n") for _ in range(rng.randint(0, 9)))
        assert filters._like(pattern)(text) == _regex_like(pattern, text), (pattern, text)


def test_like_on_a_pathological_pattern_answers() -> None:
    # The old regex needed seconds for this; the piecewise match reads the text a few times.
    reason = "a" * 1911
    assert filters._like("%a%a%b")(reason) is False
    assert filters._like("%a" * 200 + "%")(reason) is True
    assert filters._like("%A_%")("xay") is True


@pytest.mark.parametrize(
    "raw",
    [
        '[{"op":"ge","name":"creation_date","val":1e20}]',
        '[{"op":"ge","name":"creation_date","val":-1e300}]',
        "[" * 1000 + "]" * 1000,
        "[" + '{"or":[' * 1000 + '{"op":"eq","name":"status","val":"x"}' + "]}" * 1000 + "]",
    ],
)
def test_bad_filters_are_400s(raw: str) -> None:
    with pytest.raises(errors.BadRequestError):
        predicate, _ = filters.parse(raw, filters.JOB_FIELDS)
        predicate({"creation_date": "2024-01-01T00:00:00Z", "status": "x"})
