"""lme4-style formula -> `ModelSpec` (parsing only; no data involved).

The random-effect bars ``(expr | g)``, ``(expr || g)`` and nesting ``(1 | a/b)`` are parsed
here; the population-level part is handed to formulae as written, so ``a*b``, ``a:b`` and
categorical predictors follow formulae's rules (treatment coding, ``x[level]`` names).
"""

from __future__ import annotations

import re

from .exceptions import FormulaError, SpecError
from .spec import GroupTerm, ModelSpec, Prior

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


def _error(formula: str, pos: int, why: str) -> FormulaError:
    caret = " " * pos + "^"
    return FormulaError(f"{why} at position {pos}:\n  {formula}\n  {caret}")


def _split_top_level(text: str, offset: int, formula: str) -> list[tuple[int, str]]:
    """Split on '+' outside parentheses; return (absolute position, piece) pairs."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _error(formula, offset + i, "unmatched ')'")
        elif ch == "+" and depth == 0:
            pieces.append((offset + start, text[start:i]))
            start = i + 1
    if depth != 0:
        raise _error(formula, offset + text.rfind("("), "unclosed '('")
    pieces.append((offset + start, text[start:]))
    for pos, piece in pieces:
        if not piece.strip():
            raise _error(formula, pos, "empty term (two '+' in a row or a trailing '+')")
    return pieces


def _bar_term(pos: int, piece: str, formula: str) -> list[GroupTerm] | None:
    """Parse '(expr | g)' / '(expr || g)'; None when the piece is not a bar term."""
    stripped = piece.strip()
    if not (stripped.startswith("(") and stripped.endswith(")")):
        return None
    inner = stripped[1:-1]
    if "|" not in inner:
        return None
    lead = pos + piece.index("(") + 1
    correlated = "||" not in inner
    bar = "|" if correlated else "||"
    if inner.count(bar) != 1 or (correlated and inner.count("|") != 1):
        raise _error(formula, lead + inner.index("|"), "expected one '|' or '||' in a group term")
    expr, group = (s.strip() for s in inner.split(bar))
    if not expr:
        raise _error(formula, lead, "missing left side of '|' (use 1 for random intercepts)")
    if not group:
        raise _error(formula, lead + inner.index(bar) + len(bar), "missing grouping factor after '|'")
    factors = [f.strip() for f in group.split("/")]
    for f in factors:
        for name in f.split(":"):
            if not _NAME.match(name.strip()):
                raise _error(formula, lead + inner.index(bar) + len(bar) + 1,
                             f"grouping factor {name.strip()!r} is not a column name")
    # lme4: (e | a/b) == (e | a) + (e | a:b)
    nested = [":".join(factors[: k + 1]) for k in range(len(factors))]
    return [GroupTerm(group=g, expr=expr, correlated=correlated) for g in nested]


def _expr_terms(expr: str) -> tuple[bool, list[str]]:
    """(has intercept, named terms) of a bar's left side: '0 + x' -> (False, ['x'])."""
    pieces = [p.strip() for p in expr.replace("- 1", "+ 0").replace("-1", "+ 0").split("+")]
    named = [p for p in pieces if p not in ("0", "1")]
    return "0" not in pieces, named


def _merge_same_factor(terms: list[GroupTerm]) -> list[GroupTerm]:
    """lme4 treats (1|g) + (0 + x|g) as independent blocks: merge them into one '||' term."""
    merged: dict[str, GroupTerm] = {}
    for term in terms:
        if term.group not in merged:
            merged[term.group] = term
            continue
        prev = merged[term.group]
        parts = [_expr_terms(t.expr) for t in (prev, term)]
        if any(t.correlated and has_icpt + len(named) > 1
               for t, (has_icpt, named) in zip((prev, term), parts)):
            raise FormulaError(
                f"grouping factor {term.group!r} appears in {prev.formula} and {term.formula}; "
                f"write one term, e.g. ({prev.expr} + {term.expr} | {term.group}) or with '||'")
        named = list(dict.fromkeys(parts[0][1] + parts[1][1]))
        intercept = "1" if parts[0][0] or parts[1][0] else "0"
        merged[term.group] = GroupTerm(term.group, " + ".join([intercept, *named]),
                                       correlated=False)
    return list(merged.values())


def parse_formula(formula: str) -> tuple[str, str, list[GroupTerm], dict[str, str]]:
    """Split ``"y ~ x + (1 + x | g) + offset(log(n))"`` into response, fixed right-hand side,
    group terms and the offset's role (``{"exposure": "n"}``)."""
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string like 'y ~ x + (1 | g)', but got {formula!r}")
    if formula.count("~") != 1:
        pos = formula.find("~", formula.find("~") + 1) if "~" in formula else 0
        raise _error(formula, max(pos, 0), "a formula needs exactly one '~'")
    lhs, rhs = formula.split("~")
    response = lhs.strip()
    if not _NAME.match(response):
        raise _error(formula, 0, f"response {response!r} must be a single column name")
    start = len(lhs) + 1
    fixed, groups = [], []
    for pos, piece in _split_top_level(rhs, start, formula):
        bar = _bar_term(pos, piece, formula)
        if bar is None:
            if "|" in piece:
                raise _error(formula, pos + piece.index("|"),
                             "a '|' must sit inside parentheses, as in (1 | g)")
            fixed.append((pos, piece.strip()))
        else:
            groups.extend(bar)
    offsets = [(pos, piece) for pos, piece in fixed if piece.startswith("offset(")]
    if len(offsets) > 1:
        raise _error(formula, offsets[1][0], "a formula takes at most one offset(...) term")
    fixed_rhs = " + ".join(piece for _, piece in fixed if not piece.startswith("offset(")) or "1"
    return response, fixed_rhs, _merge_same_factor(groups), _offset_roles(formula, offsets)


_OFFSET = re.compile(r"^offset\(\s*(?:(log)\(\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*\)|([A-Za-z_.][A-Za-z0-9_.]*))\s*\)$")


def _offset_roles(formula: str, offsets: list[tuple[int, str]]) -> dict[str, str]:
    """``offset(log(n))`` is ``exposure="n"``; ``offset(x)`` is ``offset="x"`` (log scale)."""
    if not offsets:
        return {}
    pos, piece = offsets[0]
    match = _OFFSET.match(piece)
    if match is None:
        raise _error(formula, pos, f"offset takes a column or log(column), as in offset(log(n)), "
                                   f"but got {piece!r}")
    log, logged, plain = match.groups()
    return {"exposure": logged} if log else {"offset": plain}


def from_formula(formula: str, family: str = "gaussian", *, link: str | None = None,
                 trials: str | None = None, offset: str | None = None, exposure: str | None = None,
                 weights: str | None = None,
                 priors: dict[str, Prior] | None = None, centered: bool | str | list[str] = "auto"
                 ) -> ModelSpec:
    """Build a `ModelSpec` from an lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``.

    Grammar: ``(1|g)``, ``(1 + x|g)``, ``(0 + x|g)``, ``(1 + x || g)`` (independent SDs),
    crossed ``(1|a) + (1|b)``, nested ``(1|a/b)`` = ``(1|a) + (1|a:b)``; the fixed part uses
    formulae syntax (``a*b``, ``a:b``, categorical columns treatment-coded as ``x[level]``).
    """
    response, fixed, groups, in_formula = parse_formula(formula)
    if in_formula and (offset or exposure):
        raise SpecError("the formula has an offset(...) term and offset= / exposure= is given "
                        "too: give one of them")
    roles = {"offset": offset, "exposure": exposure, **in_formula}
    spec = ModelSpec(response=response, fixed=fixed, groups=tuple(groups), family=family,
                     link=link, trials=trials, weights=weights, **roles)
    spec = spec.with_priors(priors)
    return spec.with_centered(centered)
