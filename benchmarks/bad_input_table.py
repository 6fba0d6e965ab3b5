"""Print the bad-input table (case | exception | message) from the cases the tests run.

    python benchmarks/bad_input_table.py

The cases live in ``tests/test_bad_input.py``; the test asserts each message's words and that
the caller's DataFrame is unchanged; this prints what a user sees.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import test_bad_input as cases  # noqa: E402


def main() -> None:
    rows = [(case[0], *cases.raise_model_case(case)) for case in cases.CASES]
    rows += [(case[0], *cases.raise_predict_case(case)) for case in cases.PREDICT_CASES]
    print("| # | case | exception | message | caller's frame unchanged |")
    print("|---|---|---|---|---|")
    for i, (name, exc, before, after) in enumerate(rows, 1):
        message = str(exc).replace("|", "\\|").replace("\n", " ")
        print(f"| {i} | {name} | {type(exc).__name__} | {message} | "
              f"{'yes' if before == after else 'NO'} |")


if __name__ == "__main__":
    main()
