"""Cross-field rules from a job file, such as `insurance_claim_amount <= total_charge`.

A rule is a Python-like expression over the record's fields with comparisons, arithmetic,
`and`/`or`/`not`, numbers and strings; nothing else (no calls, no attributes), so a job file
cannot run code. Nested fields are reached with dots: `address.city != ""`.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any

from simulacra.errors import UsageError

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.Mod: operator.mod}


@dataclass(frozen=True)
class Rule:
    text: str
    tree: ast.Expression

    def holds(self, record: dict[str, Any]) -> bool:
        try:
            return bool(_eval(self.tree.body, record))
        except (TypeError, ZeroDivisionError, KeyError):
            return False


def parse_rules(texts: list[str], fields: set[str] | None = None) -> list[Rule]:
    """Parse every rule up front: a typo fails before the run, naming the rule."""
    rules = []
    for text in texts:
        try:
            tree = ast.parse(str(text), mode="eval")
        except SyntaxError:
            raise UsageError(f"rule '{text}' is not a valid expression") from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call | ast.Attribute | ast.Subscript | ast.Lambda):
                raise UsageError(f"rule '{text}' may only use fields, numbers, strings, "
                                 "comparisons, arithmetic and and/or/not")
            if fields is not None and isinstance(node, ast.Name) and \
                    node.id.split(".")[0] not in fields:
                raise UsageError(f"rule '{text}' names '{node.id}', which is not a field")
        rules.append(Rule(str(text), tree))
    return rules


def _eval(node: ast.AST, record: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return record[node.id]
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, record) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, record)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return _ARITH[type(node.op)](_eval(node.left, record), _eval(node.right, record))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, record)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, record)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, record) for e in node.elts]
    raise TypeError(f"unsupported expression: {type(node).__name__}")
