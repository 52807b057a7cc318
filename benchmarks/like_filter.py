"""``ilike`` filters: the piecewise matcher against the backtracking regex it replaced.

Prints a Markdown table of seconds per match for patterns that make a backtracking regex explode
(``%a%a%...b`` on a long reason that has no ``b``). No test asserts on these timings.
"""

from __future__ import annotations

import re
import time

from _common import sized  # (and lambdas/ on sys.path)

from geobatch_core.filters import _like

MIN_SECONDS = sized(0.2, 0.01)  # each figure is the mean of the matches that fit in this time


def old_like(pattern: str):  # type: ignore[no-untyped-def]
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    compiled = re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)
    return lambda s: bool(compiled.match(s))


def seconds(match, text: str) -> str:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    runs = 0
    while True:
        match(text)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed > MIN_SECONDS:
            return f"{elapsed / runs:.6f}"


def main() -> None:
    # Each more "%a" multiplies the regex's time by about the text's length.
    # Smoke: short texts, and the last case still the one the regex is not run on.
    cases = sized(
        [("%a%b", 1911), ("%a%a%b", 1911), ("%a%a%a%b", 300), ("%a%a%a%b", 1911)],
        [("%a%b", 100), ("%a%a%b", 100), ("%a%a%a%b", 1911)],
    )
    print("| pattern | text ('a' × n) | backtracking regex (s) | piecewise match (s) |")
    print("|---|---|---|---|")
    for pattern, n in cases:
        text = "a" * n
        old = seconds(old_like(pattern), text) if n * pattern.count("%") < 6000 else "(minutes: not run)"
        print(f"| `{pattern}` | {n} | {old} | {seconds(_like(pattern), text)} |", flush=True)


if __name__ == "__main__":
    main()
