"""``ilike`` filters: the piecewise matcher against the backtracking regex it replaced.

Prints a Markdown table of seconds per match for patterns that make a backtracking regex explode
(``%a%a%...b`` on a long reason that has no ``b``). No test asserts on these timings.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from geobatch_core.filters import _like


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
        if elapsed > 0.2:
            return f"{elapsed / runs:.6f}"


def main() -> None:
    # Each more "%a" multiplies the regex's time by about the text's length.
    cases = [("%a%b", 1911), ("%a%a%b", 1911), ("%a%a%a%b", 300), ("%a%a%a%b", 1911)]
    print("| pattern | text ('a' × n) | backtracking regex (s) | piecewise match (s) |")
    print("|---|---|---|---|")
    for pattern, n in cases:
        text = "a" * n
        old = seconds(old_like(pattern), text) if n * pattern.count("%") < 6000 else "(minutes: not run)"
        print(f"| `{pattern}` | {n} | {old} | {seconds(_like(pattern), text)} |", flush=True)


if __name__ == "__main__":
    main()
