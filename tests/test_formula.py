"""lme4 grammar -> ModelSpec: parsing only, no data."""

import numpy as np
import pytest

import hierarchical as hier
from hierarchical.exceptions import FormulaError
from hierarchical.spec import GroupTerm


@pytest.mark.parametrize(
    "formula, fixed, groups",
    [
        ("y ~ x + (1 | g)", "x", [GroupTerm("g", "1")]),
        ("y ~ x + (1 + x | g)", "x", [GroupTerm("g", "1 + x")]),
        ("y ~ x + (x | g)", "x", [GroupTerm("g", "x")]),
        ("y ~ x + (0 + x | g)", "x", [GroupTerm("g", "0 + x")]),
        ("y ~ x + (1 + x || g)", "x", [GroupTerm("g", "1 + x", correlated=False)]),
        ("y ~ 1 + (1 | a) + (1 | b)", "1", [GroupTerm("a", "1"), GroupTerm("b", "1")]),
        ("y ~ x + (1 | a/b)", "x", [GroupTerm("a", "1"), GroupTerm("a:b", "1")]),
        ("y ~ (1 | a/b/c)", "1", [GroupTerm("a"), GroupTerm("a:b"), GroupTerm("a:b:c")]),
        ("y ~ a*b + (1|g)", "a*b", [GroupTerm("g", "1")]),
        ("y ~ a + a:b + (1|g)", "a + a:b", [GroupTerm("g", "1")]),
        ("y ~ x + (1 | g) + (0 + x | g)", "x", [GroupTerm("g", "1 + x", correlated=False)]),
        ("y ~ x + (0 + x | g) + (1 | g)", "x", [GroupTerm("g", "1 + x", correlated=False)]),
        ("y ~ 0 + x + (1|g)", "0 + x", [GroupTerm("g", "1")]),
    ],
)
def test_lme4_grammar(formula, fixed, groups):
    spec = hier.from_formula(formula)
    assert spec.response == "y"
    assert spec.fixed == fixed
    assert list(spec.groups) == groups


def test_formula_round_trips_through_spec():
    spec = hier.from_formula("Reaction ~ Days + (Days || Subject)")
    assert spec.formula == "Reaction ~ Days + (Days || Subject)"
    assert hier.from_formula(spec.formula) == spec


@pytest.mark.parametrize(
    "formula, position, words",
    [
        ("y ~ x + (1 | g", 8, "unclosed '('"),
        ("y ~ x + 1 | g)", 13, "unmatched ')'"),
        ("y ~ x + + z", 7, "empty term"),
        ("y ~ x +", 7, "empty term"),
        ("y x + (1|g)", 0, "exactly one '~'"),
        ("y ~ x ~ z", 6, "exactly one '~'"),
        ("y ~ x + ( | g)", 9, "missing left side"),
        ("y ~ x + (1 | )", 12, "missing grouping factor"),
        ("y ~ x + 1 | g", 10, "inside parentheses"),
        ("y ~ x + (1 | g-h)", 13, "not a column name"),
    ],
)
def test_syntax_errors_show_the_position(formula, position, words):
    with pytest.raises(FormulaError) as err:
        hier.from_formula(formula)
    message = str(err.value)
    assert words in message
    assert f"at position {position}" in message
    assert formula in message  # the caret line sits under the formula itself


def test_same_factor_in_two_correlated_terms_is_refused():
    with pytest.raises(FormulaError, match="'g' appears in"):
        hier.from_formula("y ~ x + (1 + x | g) + (1 | g)")


def test_non_string_formula():
    with pytest.raises(FormulaError, match="must be a string"):
        hier.from_formula(42)


def test_a_transformed_term_in_the_formula_builds():
    """``I(day**2)``: formulae lists an empty variable name for the literal, which used to
    fail as a missing column ''."""
    data = hier.datasets.load("pixel")
    model = hier.Model("pixel ~ day + I(day**2) + (day|Dog) + (1|Dog:Side)", data)
    column = model.design.X[:, model.design.fixed_names.index("I(day ** 2)")]
    assert np.array_equal(column, data["day"].to_numpy() ** 2)
