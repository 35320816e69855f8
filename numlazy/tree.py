"""Nested lists, tuples (named ones too) and dicts of leaves: what `to_cpu`, `save` and
`nl.compile` walk."""
from __future__ import annotations


def leaves(tree) -> list:
    """The leaves of `tree`, depth first, dict values in insertion order."""
    out: list = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        else:
            out.append(node)
    return out


def map_leaves(fn, tree):
    """`tree` with every leaf replaced by `fn(leaf)`, containers rebuilt with their types."""
    if isinstance(tree, dict):
        return type(tree)((k, map_leaves(fn, v)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_leaves(fn, v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_leaves(fn, v) for v in tree)
    return fn(tree)
