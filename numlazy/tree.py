"""Nested lists, tuples (named ones too) and dicts of leaves: what `to_cpu`, `save` and
`nl.compile` walk.

A tree nested deeper than `MAX_DEPTH` levels (a container that holds itself, usually) raises
`ValueError` instead of looping forever or overflowing the stack.
"""
from __future__ import annotations

MAX_DEPTH = 256


def _too_deep() -> ValueError:
    return ValueError(f"the tree is nested more than {MAX_DEPTH} levels deep (a list, tuple "
                      f"or dict that contains itself?)")


def leaves(tree) -> list:
    """The leaves of `tree`, depth first, dict values in insertion order."""
    out: list = []
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            items = node.values() if isinstance(node, dict) else node
            stack.extend((v, depth + 1) for v in reversed(list(items)))
        else:
            out.append(node)
    return out


def map_leaves(fn, tree, _depth: int = 0):
    """`tree` with every leaf replaced by `fn(leaf)`, containers rebuilt with their types."""
    if isinstance(tree, (dict, list, tuple)) and _depth >= MAX_DEPTH:
        raise _too_deep()
    if isinstance(tree, dict):
        return type(tree)((k, map_leaves(fn, v, _depth + 1)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_leaves(fn, v, _depth + 1) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_leaves(fn, v, _depth + 1) for v in tree)
    return fn(tree)
