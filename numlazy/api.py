"""The public array functions. Each records a node; nothing runs until a step.

Elementwise functions are generated from the op table. Every check (dtypes, shapes, axes,
devices) happens here, before anything is recorded, so a mistake raises where the user wrote
it and leaves no half-recorded graph.
"""
from __future__ import annotations

import builtins
import collections
import functools
import math
import operator

import numpy as np

from . import dtypes as dt
from . import executor, ir, ops
from ._array import Array
from .device import Device, parse
from .registry import backend_for

# Exact types: NumPy scalars (np.float64 is a float) are strong.
_SCALARS = (bool, int, float, complex)


# --- arguments -----------------------------------------------------------------------------

def _describe(x) -> str:
    return f"{type(x).__name__} {x!r}" if isinstance(x, _SCALARS) else type(x).__name__


def _operands(name: str, args) -> tuple[list, Device]:
    """Arrays stay, Python scalars stay (weak), NumPy arrays and sequences become arrays on
    the arrays' device. All arrays must share one device. (A hot path: every op calls it.)"""
    out, device, convert = list(args), None, []
    for i, a in enumerate(args):
        kind = type(a)
        if kind is Array or (kind not in _SCALARS and isinstance(a, Array)):
            d = a._node.device
            if device is None:
                device = d
            elif d is not device and d != device:
                raise ValueError(f"{name}: arrays are on different devices ({device} and {d}); "
                                 f"move them with x.to_device(...) first")
        elif kind in _SCALARS:
            continue
        elif isinstance(a, (np.ndarray, np.generic, list, tuple)):
            convert.append(i)
        else:
            raise TypeError(f"{name}: argument {i + 1} must be a numlazy array, a NumPy array "
                            f"or a Python scalar (bool, int, float, complex), got "
                            f"{_describe(a)}")
    if device is None and not convert:
        convert.append(0)
    for i in convert:
        out[i] = asarray(args[i], device=device)
        device = out[i].device
    return out, device


def _broadcast_shape(name: str, shapes) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{name}: shapes {' and '.join(map(str, shapes))} cannot be "
                         f"broadcast together") from None


def _elementwise_node(name, operands, loop, out_dtype, device, shape=None) -> Array:
    if shape is None:
        shapes = [a._node.shape for a in operands if type(a) is Array]
        shape = shapes[0]
        for s in shapes:
            if s != shape:
                shape = _broadcast_shape(name, shapes)
                break
    srcs = []
    for a, want in zip(operands, loop):
        if type(a) is Array:
            node = a._node
            srcs.append(node if node.shape == shape else broadcast_to(a, shape)._node)
        else:
            dt.check_scalar_fits(a, want, name)
            srcs.append(ir.param(a, want, device))
    return Array(ir.make(name, tuple(srcs), (loop,), (), shape, out_dtype, device))


def _ufunc_function(op: ops.Op):
    name, nin = op.name, op.nin
    # Operand kinds (dtypes, Python scalar types) -> (loop dtypes, output dtype): a finite set.
    resolved = {} if name not in _COMPARISONS and name != "pow" else None

    def fn(*args):
        if len(args) != nin:
            raise TypeError(f"{op.name}() takes {op.nin} argument(s), got {len(args)}")
        if resolved is not None:
            node = _fast_elementwise(op, resolved, args)
            if node is not None:
                return Array(node)
        operands, device = _operands(op.name, args)
        kinds = tuple([a._node.dtype if isinstance(a, Array) else type(a) for a in operands])
        if op.domain:
            _check_domain(op.name, kinds, op.domain)
        loop, out_dtype = dt.resolve_ufunc(op.ufunc, kinds)
        if op.name in _COMPARISONS:
            known = _out_of_range_comparison(op.name, operands, loop, device)
            if known is not None:
                return known
        elif op.name == "pow" and loop[1].kind == "i" and type(operands[1]) is int \
                and operands[1] < 0:
            raise ValueError(f"pow: integers to negative integer powers are not allowed "
                             f"({_describe(operands[1])} with dtype {loop[1]}); use a float "
                             f"base or exponent")
        return _elementwise_node(op.name, operands, loop, out_dtype, device)
    fn.__name__ = fn.__qualname__ = op.name
    fn.__doc__ = op.doc
    return fn


def _fast_elementwise(op, resolved, args):
    """The node of the common case — one or two operands, numlazy arrays of one shape and
    device or Python scalars — with the dtype rule read from `resolved`; None for everything
    else (the general path checks, converts and broadcasts). Every operator calls it."""
    name = op.name
    if len(args) == 1:
        (x,) = args
        if type(x) is not Array:
            return None
        node = x._node
        kinds = (node.dtype,)
        rule = resolved.get(kinds) or _resolve(resolved, op, kinds)
        return ir.make(name, (node,), (rule[0],), (), node.shape, rule[1], node.device)
    if len(args) != 2:
        return None
    x, y = args
    tx, ty = type(x), type(y)
    if tx is Array:
        nx = x._node
        if ty is Array:
            ny = y._node
            if ny.device is not nx.device:
                return None
            if ny.shape != nx.shape:          # broadcasting: stride-0 views of either
                shape = _broadcast_pair(nx.shape, ny.shape)
                if shape is None:
                    return None               # the general path names the error
                nx, ny = _broadcast_node(nx, shape), _broadcast_node(ny, shape)
            kinds = (nx.dtype, ny.dtype)
        elif ty is float or ty is int or ty is bool:
            kinds = (nx.dtype, ty)
        else:
            return None
        shape, device = nx.shape, nx.device
    elif ty is Array and (tx is float or tx is int or tx is bool):
        ny = y._node
        kinds = (tx, ny.dtype)
        shape, device = ny.shape, ny.device
    else:
        return None
    loop, out_dtype = resolved.get(kinds) or _resolve(resolved, op, kinds)
    if tx is Array and ty is Array:
        return ir.make(name, (nx, ny), (loop,), (), shape, out_dtype, device)
    # A node over a new param has no equal live node to reuse: no interning (ir.make).
    sx = nx if tx is Array else _param(x, loop[0], device, name)
    sy = ny if ty is Array else _param(y, loop[1], device, name)
    return ir.Node(name, (sx, sy), (loop,), (), shape, out_dtype, device)


@functools.lru_cache(maxsize=1024)
def _broadcast_pair(x: tuple, y: tuple):
    """The broadcast shape of two shapes, or None if they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(x, y))
    except ValueError:
        return None


def _broadcast_node(node, shape: tuple):
    """`node` seen with `shape`, which it broadcasts to (`broadcast_to` without its checks)."""
    if node.shape == shape:
        return node
    lead = len(shape) - len(node.shape)
    attrs = tuple([-1 if s == 1 else lead + d for d, s in enumerate(node.shape)])
    return ir.make("broadcast", (node,), attrs, (), shape, node.dtype, node.device)


def _resolve(resolved: dict, op: ops.Op, kinds: tuple):
    """The dtype rule of `op` for operand `kinds`, checked against the op's domain once and
    kept in `resolved`."""
    if op.domain:
        _check_domain(op.name, kinds, op.domain)
    rule = resolved[kinds] = dt.resolve_ufunc(op.ufunc, kinds)
    return rule


def _param(value, dtype, device, name):
    if type(value) is int:
        dt.check_scalar_fits(value, dtype, name)
    return ir.param(value, dtype, device)


def _kind(value):
    """What `_check_domain` and the dtype rules take for `value`: an array's dtype, a Python
    scalar's type, the dtype NumPy gives anything else (NumPy scalars and arrays, lists)."""
    if isinstance(value, Array):
        return value.dtype
    if type(value) in _SCALARS:
        return type(value)
    return np.asarray(value).dtype


def _check_domain(name: str, kinds, domain: str = "real") -> None:
    """TypeError for an operand outside the dtypes the array API defines op `name` for:
    `domain` "real" (no complex) or "real floating" (float32, float64)."""
    kinds_ok = "biuf" if domain == "real" else "f"
    for k in kinds:
        kind = {bool: "b", int: "i", float: "f", complex: "c"}[k] if isinstance(k, type) \
            else k.kind
        if kind not in kinds_ok:
            got = f"a Python {k.__name__}" if isinstance(k, type) else f"dtype {k}"
            accepted = "real-valued dtypes (bool, integers, float32, float64)" \
                if domain == "real" else "real floating-point dtypes (float32, float64)"
            raise TypeError(f"{name} is not defined for {got}; it accepts {accepted}")


_COMPARISONS = {"equal": operator.eq, "not_equal": operator.ne, "less": operator.lt,
                "less_equal": operator.le, "greater": operator.gt, "greater_equal": operator.ge}


def _out_of_range_comparison(name, operands, loop, device):
    """NumPy 2 compares an integer array with a Python int outside its dtype's range by value
    (`uint8_array < 300` is all True): the result is the same for every element, found by
    comparing any in-range value with the scalar. None when every scalar fits."""
    for a, want in zip(operands, loop):
        if type(a) is int and dt.is_integer(want):
            info = np.iinfo(want)
            if not info.min <= a <= info.max:
                break
    else:
        return None
    sample = [0 if isinstance(a, Array) else a for a in operands]
    value = _COMPARISONS[name](*sample)
    shape = _broadcast_shape(name, [a.shape for a in operands if isinstance(a, Array)])
    return full(shape, value, dtype=dt.bool_, device=device)


ELEMENTWISE_FUNCTIONS = {name: _ufunc_function(op) for name, op in ops.TABLE.items()
                         if op.ufunc is not None}
globals().update(ELEMENTWISE_FUNCTIONS)


def round(x, /):  # noqa: A001 - array API name
    """Round to the nearest integer, halves to even (`np.round`)."""
    (x,), device = _operands("round", (x,))
    out_dtype = dt.float32 if x.dtype == dt.bool_ else x.dtype     # NumPy: float16 for bool
    return _elementwise_node("round", [x], (x.dtype,), out_dtype, device)


def _component(name: str, x) -> Array:
    (x,), device = _operands(name, (x,))
    if x.dtype.kind == "b":
        raise TypeError(f"{name}: expected a numeric dtype, got bool")
    return _elementwise_node(name, [x], (x.dtype,), dt.real_dtype(x.dtype), device)


def real(x, /):
    """The real component of each element (float32 for complex64, float64 for complex128;
    a real array is returned as is)."""
    return _component("real", x)


def imag(x, /):
    """The imaginary component of each element (a real dtype, as `real`; zeros for a real
    array)."""
    return _component("imag", x)


def where(condition, x1, x2, /):
    """Elements of `x1` where `condition` is true, else of `x2` (Python scalars are weak)."""
    operands, device = _operands("where", (condition, x1, x2))
    kinds = [a.dtype if isinstance(a, Array) else type(a) for a in operands[1:]]
    if builtins.all(isinstance(k, type) for k in kinds):
        kinds[0] = asarray(operands[1]).dtype
    result = dt.result_type(*kinds)
    return _elementwise_node("where", operands, (dt.bool_, result, result), result, device)


def astype(x, dtype, /, *, copy: bool = True, device=None):
    """`x` converted to `dtype` (values cast as NumPy's `astype` does).

    Complex to a real dtype raises TypeError, as the array API standard recommends (NumPy
    silently drops the imaginary part with a ComplexWarning): say which part with `real(x)`,
    `imag(x)` or `abs(x)`. Complex to bool is `x != 0`."""
    (x,), _ = _operands("astype", (x,))
    dtype = dt.as_dtype(dtype)
    if dt.is_complex(x.dtype) and dtype.kind not in "cb":
        raise TypeError(f"astype: cannot cast complex dtype {x.dtype} to real dtype {dtype}; "
                        f"take real(x), imag(x) or abs(x) first (accepted targets: complex64, "
                        f"complex128, bool)")
    if device is not None:
        x = asarray(x, device=device)
    if dt.is_complex(x.dtype) and dtype == dt.bool_:
        return not_equal(x, 0)  # noqa: F821 - generated from the op table
    if dtype == x.dtype and not copy:
        return x
    return _elementwise_node("astype", [x], (x.dtype,), dtype, x.device, x.shape)


def clip(x, /, min=None, max=None):  # noqa: A002 - array API names
    """`x` limited to [min, max]; NaN stays NaN; the result keeps x's dtype."""
    x = x if isinstance(x, Array) else asarray(x)
    _check_domain("clip", [_kind(a) for a in (x, min, max) if a is not None])
    out = x
    if min is not None:
        out = maximum(out, min)  # noqa: F821 - generated from the op table
    if max is not None:
        out = minimum(out, max)  # noqa: F821
    return out if out.dtype == x.dtype else astype(out, x.dtype)


# --- reductions ----------------------------------------------------------------------------

def _axes(name: str, ndim: int, axis) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    items = axis if isinstance(axis, tuple) else (axis,)
    out = [_axis(name, ndim, a, "an int, a tuple of ints or None") for a in items]
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _reduce(name: str, x, axis=None, keepdims=False, dtype=None) -> Array:
    if type(x) is not Array:
        (x,), _ = _operands(name, (x,))
    axes = _axes(name, x.ndim, axis)
    if dtype is not None:
        x = astype(x, dtype, copy=False)
    if name in ops.ORDERED:
        _check_domain(name, (x.dtype,))
    out_dtype = ops.reduce_dtype(name, x.dtype)
    if not axes:
        if name in ("argmax", "argmin"):       # a 0-d array's only element is at index 0
            return full(x.shape, 0, dtype=out_dtype, device=x.device)
        return astype(x, out_dtype, copy=False)
    shape = tuple([s for d, s in enumerate(x.shape) if d not in axes])
    if name in ops.IDENTITY_FREE and 0 in [x.shape[a] for a in axes]:
        raise ValueError(f"{name}: zero-size reduction over axis {axis} of shape {x.shape}; "
                         f"{name} has no identity")
    out = Array(ir.make(name, (x._node,), (axes,), (), shape, out_dtype, x.device))
    if not keepdims:
        return out
    # expand_dims(out, axes), without checking again what was checked above
    return _index_view("expand_dims", out, [("n",) if d in axes else ("f",)
                                            for d in range(x.ndim)])


def _make_reduction(name):
    def fn(x, /, *, axis=None, keepdims=False):
        return _reduce(name, x, axis, keepdims)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"`{name}` over `axis` (int, tuple or None = all), as NumPy."
    return fn


max, min, any, all = (_make_reduction(n) for n in ("max", "min", "any", "all"))  # noqa: A001


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    """Sum over `axis`; integers sum in the default integer type, float32 accumulates in
    float64 and rounds once at the end."""
    return _reduce("sum", x, axis, keepdims, dtype)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    """Product over `axis`, dtypes as `sum`."""
    return _reduce("prod", x, axis, keepdims, dtype)


def _arg_reduction(name):
    def fn(x, /, *, axis=None, keepdims=False):
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{name}: axis must be an int or None, got {_describe(axis)}")
        if axis in (0, -1) and getattr(x, "ndim", None) == 0:
            axis = None                        # NumPy accepts axis 0 of a 0-d array here
        if axis is None and keepdims:
            out = _reduce(name, x, None, False)
            return reshape(out, (1,) * x.ndim)
        return _reduce(name, x, axis, keepdims)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Index of the {name[3:]}imum along `axis` (flat index if None); first NaN wins."
    return fn


argmax, argmin = _arg_reduction("argmax"), _arg_reduction("argmin")


def _count(x, axis) -> int:
    return math.prod(x.shape[a] for a in _axes("mean", x.ndim, axis))


def _float_input(name, x) -> Array:
    (x,), _ = _operands(name, (x,))
    return x if x.dtype.kind in "fc" else astype(x, dt.default_float)


def mean(x, /, *, axis=None, keepdims=False):
    """Arithmetic mean over `axis` (integers give float64, as NumPy)."""
    x = _float_input("mean", x)
    return divide(sum(x, axis=axis, keepdims=keepdims), float(_count(x, axis)))  # noqa: F821


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Variance over `axis` with `correction` (NumPy's ddof): two passes, mean first. Of a
    complex array: the mean of |x - mean|**2, a real dtype (as NumPy)."""
    x = _float_input("var", x)
    d = subtract(x, mean(x, axis=axis, keepdims=True))  # noqa: F821
    if dt.is_complex(d.dtype):
        re, im = real(d), imag(d)
        sq = add(multiply(re, re), multiply(im, im))  # noqa: F821
    else:
        sq = multiply(d, d)  # noqa: F821
    ss = sum(sq, axis=axis, keepdims=keepdims)  # noqa: F821
    return divide(ss, float(builtins.max(_count(x, axis) - correction, 0)))  # noqa: F821


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Standard deviation: `sqrt(var(...))`."""
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))  # noqa: F821


# --- views ---------------------------------------------------------------------------------

def _view(op, x: Array, attrs, rt, shape) -> Array:
    rt = tuple(np.int64(v) for v in rt)
    return Array(ir.make(op, (x._node,), attrs, rt, tuple(shape), x.dtype, x.device))


def broadcast_to(x, /, shape) -> Array:
    """`x` seen with `shape` (stride-0 reads, no copy)."""
    (x,), _ = _operands("broadcast_to", (x,))
    shape = _shape("broadcast_to", shape)
    if shape == x.shape:
        return x
    lead = len(shape) - x.ndim
    if lead < 0 or builtins.any(s not in (1, t) for s, t in zip(x.shape, shape[lead:])):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    attrs = tuple(-1 if s == 1 else lead + d for d, s in enumerate(x.shape))
    return _view("broadcast", x, attrs, (), shape)


def broadcast_arrays(*arrays):
    """The arrays broadcast against each other (stride-0 views)."""
    if not arrays:
        return []
    arrays, _ = _arrays("broadcast_arrays", arrays)
    shape = _broadcast_shape("broadcast_arrays", [a.shape for a in arrays])
    return [broadcast_to(a, shape) for a in arrays]


def permute_dims(x, /, axes) -> Array:
    """`x` with its axes reordered (an index map, no copy)."""
    (x,), _ = _operands("permute_dims", (x,))
    axes = tuple(operator.index(a) % builtins.max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute_dims: axes {axes} are not a permutation of "
                         f"{tuple(range(x.ndim))} for shape {x.shape}")
    if axes == tuple(range(x.ndim)):
        return x
    return _view("permute", x, axes, (), [x.shape[a] for a in axes])


def matrix_transpose(x, /) -> Array:
    """`x` with its last two axes swapped (a view)."""
    (x,), _ = _operands("matrix_transpose", (x,))
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: x must have at least 2 dimensions, got shape "
                         f"{x.shape}")
    axes = list(range(x.ndim))
    axes[-2:] = axes[:-3:-1]
    return permute_dims(x, tuple(axes))


def reshape(x, /, shape, *, copy=None) -> Array:
    """`x` with a new shape of the same size (one -1 is inferred)."""
    (x,), _ = _operands("reshape", (x,))
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: only one -1 is allowed, got {shape}")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or x.size % known:
            raise ValueError(f"reshape: cannot reshape array of size {x.size} into {shape}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    shape = _shape("reshape", shape)
    if math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape array of size {x.size} (shape {x.shape}) "
                         f"into shape {shape}")
    if shape == x.shape and not copy:
        return x
    node = x._node
    if node.realized and copy is not True:     # contiguous data: a view of the same buffer
        return Array(ir.data(node.buffer.reshape(shape), shape, x.dtype, x.device))
    attrs = (x.ndim, len(shape))
    return _view("reshape", x, attrs, x.shape + shape, shape)


def _index_view(name, x: Array, entries) -> Array:
    """Basic indexing: entries are ('f',), ('s', start, step, length), ('i', index), ('n',)."""
    attrs = tuple(e[0] for e in entries)
    if builtins.all(a == "f" for a in attrs):
        return x
    rt, shape, d = [], [], 0
    for e in entries:
        if e[0] == "f":
            shape.append(x.shape[d])
        elif e[0] == "s":
            rt += [e[1], e[2]]
            shape.append(e[3])
        elif e[0] == "i":
            rt.append(e[1])
        else:
            shape.append(1)
        d += e[0] != "n"
    return _view("slice", x, attrs, rt, shape)


def expand_dims(x, /, axis=0) -> Array:
    """`x` with size-1 axes inserted at `axis` (int or tuple, positions in the result)."""
    (x,), _ = _operands("expand_dims", (x,))
    axes = _axes("expand_dims", x.ndim + (len(axis) if isinstance(axis, tuple) else 1), axis)
    entries = [("n",) if d in axes else ("f",) for d in range(x.ndim + len(axes))]
    return _index_view("expand_dims", x, entries)


def squeeze(x, /, axis) -> Array:
    """`x` without the size-1 axes `axis`."""
    (x,), _ = _operands("squeeze", (x,))
    axes = _axes("squeeze", x.ndim, axis)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape})")
    return _index_view("squeeze", x, [("i", 0) if d in axes else ("f",) for d in range(x.ndim)])


def flip(x, /, *, axis=None) -> Array:
    """`x` with the order of elements reversed along `axis` (a view)."""
    (x,), _ = _operands("flip", (x,))
    axes = _axes("flip", x.ndim, axis)
    return _index_view("flip", x, [("s", builtins.max(x.shape[d] - 1, 0), -1, x.shape[d])
                                   if d in axes else ("f",) for d in range(x.ndim)])


def unstack(x, /, *, axis=0) -> tuple:
    """The slices of `x` along `axis`, as a tuple of views (no copy)."""
    (x,), _ = _operands("unstack", (x,))
    if x.ndim == 0:
        raise ValueError("unstack: x must have at least one dimension")
    ax = _axis("unstack", x.ndim, axis)
    return tuple(_index_view("unstack", x, [("i", i) if d == ax else ("f",)
                                            for d in range(x.ndim)])
                 for i in range(x.shape[ax]))


_ACCEPTED_KEYS = ("integers, slices (`:`), ellipsis (`...`), None, one integer array (with "
                  "basic indices) or one boolean array (alone)")


def getitem(x: Array, key) -> Array:
    """`x[key]`. Basic indices (integers, slices with steps, None, Ellipsis) are views. One
    integer array among basic indices selects along its axis as `take` does (fused; its
    shape replaces that axis). Out-of-range values of a NumPy array or list raise
    IndexError; those of a lazy numlazy array cannot be seen when recorded and are clipped,
    as in `take`. A boolean array as the sole index selects the elements where it is true:
    the count depends on its values, so the mask is read (a step boundary, counted
    `fallback::boolean_index`), while `x` stays lazy."""
    key = key if isinstance(key, tuple) else (key,)
    arrays = [i for i, k in enumerate(key) if isinstance(k, (Array, np.ndarray, list))]
    if not arrays:
        return _index_view("getitem", x, _basic_entries(x, key, _ACCEPTED_KEYS))
    if len(arrays) > 1:
        raise IndexError(f"only one array is supported in an index, got {len(arrays)} in "
                         f"{key!r}; accepted: {_ACCEPTED_KEYS}")
    pos = arrays[0]
    index = key[pos] if isinstance(key[pos], Array) else \
        np.asarray(key[pos], dtype=np.intp if _is_empty_list(key[pos]) else None)
    if index.dtype == dt.bool_:
        if len(key) != 1:
            raise IndexError(f"a boolean array must be the sole index, got {key!r}; "
                             f"accepted: {_ACCEPTED_KEYS}")
        return _boolean_index(x, index)
    if not dt.is_integer(index.dtype):
        raise IndexError(f"arrays used as indices must be of integer or boolean dtype, got "
                         f"{index.dtype}; accepted: {_ACCEPTED_KEYS}")
    rest = key[:pos] + (slice(None),) + key[pos + 1:]
    view = _index_view("getitem", x, _basic_entries(x, rest, _ACCEPTED_KEYS))
    axis = _output_axis(x.ndim, rest, pos)
    if isinstance(index, Array):
        (x, index), _ = _operands("getitem", (x, index))   # one device, as for any op
    else:                        # known now: out-of-range raises, as in NumPy (a lazy index
        n = view.shape[axis]     # array is clipped, as in `take`)
        lo, hi = (index.min(), index.max()) if index.size else (0, -1)
        if lo < -n or hi >= n:
            raise IndexError(f"index {hi if hi >= n else lo} is out of bounds for axis {axis} "
                             f"with size {n} in {key!r}")
        index = asarray(index, device=x.device)
    out = _take(view, reshape(index, (-1,)), axis)
    out = reshape(out, view.shape[:axis] + index.shape + view.shape[axis + 1:])
    # NumPy's rule: integers count as advanced indices too; when one stands apart from the
    # array (a slice, None or ... between them), the index array's dims go first.
    advanced = [i for i, k in enumerate(key) if i == pos or _is_int(k)]
    if advanced[-1] - advanced[0] + 1 != len(advanced) and axis:
        dims = list(range(axis, axis + index.ndim))
        out = permute_dims(out, dims + [d for d in range(out.ndim) if d not in dims])
    return out


def _is_empty_list(k) -> bool:
    """`[]` as an index selects nothing (NumPy reads it as integers, not float64)."""
    return isinstance(k, list) and np.asarray(k).size == 0


def _is_int(k) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _output_axis(ndim: int, key: tuple, pos: int) -> int:
    """The axis of the basic view of `x[key]` that the entry at `pos` (a slice) gives."""
    consumed = builtins.sum(k is not None and k is not Ellipsis for k in key)
    axis = 0
    for k in key[:pos]:
        if k is Ellipsis:
            axis += ndim - consumed
        elif k is None or isinstance(k, slice):
            axis += 1
    return axis


def _boolean_index(x: Array, mask) -> Array:
    """`x[mask]`: the flat positions of the true elements of the mask (a numlazy mask is
    read) taken from x with the mask's dims flattened into one."""
    if mask.shape != x.shape[:mask.ndim]:
        raise IndexError(f"boolean index of shape {mask.shape} does not match the leading "
                         f"dimensions of the indexed array's shape {x.shape}")
    if isinstance(mask, Array):
        if mask.device != x.device:
            raise IndexError(f"the boolean index is on {mask.device}, the array on {x.device}")
        mask = _read("boolean_index", mask)
    flat = np.flatnonzero(mask)
    rows = reshape(x, (math.prod(mask.shape),) + x.shape[mask.ndim:])
    return _take(rows, asarray(flat.astype(np.int64), device=x.device), 0)


# --- creation ------------------------------------------------------------------------------

def _shape(name, shape) -> tuple:
    shape = shape if isinstance(shape, (tuple, list)) else (shape,)
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be an int or a tuple of ints, got {shape!r}") \
            from None
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"{name}: negative dimensions are not allowed, got {shape}")
    return shape


def _create(op, rt, shape, dtype, device) -> Array:
    d = parse(device)
    backend_for(d)
    return Array(ir.Node(op, (), (), rt, shape, dtype, d))


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, bool):
        return dt.bool_
    if isinstance(value, int):
        return dt.default_int
    if isinstance(value, float):
        return dt.default_float
    if isinstance(value, complex):
        return dt.default_complex
    raise TypeError(f"fill value must be a bool, int, float or complex, got {_describe(value)}")


def full(shape, fill_value, *, dtype=None, device=None) -> Array:
    """An array of `shape` filled with `fill_value` (a runtime value: no recompile)."""
    shape = _shape("full", shape)
    if isinstance(fill_value, Array) or isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    dtype = _scalar_dtype(fill_value) if dtype is None else dt.as_dtype(dtype)
    dt.check_scalar_fits(fill_value, dtype, "full")
    if isinstance(fill_value, complex) and not dt.is_complex(dtype):
        raise TypeError(f"full: a complex fill value {fill_value!r} needs a complex dtype "
                        f"(complex64, complex128), got {dtype}")
    return _create("full", (dtype.type(fill_value),), shape, dtype, device)


def zeros(shape, *, dtype=None, device=None) -> Array:
    return full(shape, 0, dtype=dtype or dt.default_float, device=device)


def ones(shape, *, dtype=None, device=None) -> Array:
    return full(shape, 1, dtype=dtype or dt.default_float, device=device)


def empty(shape, *, dtype=None, device=None) -> Array:
    """Uninitialized in NumPy; here zero-filled, which costs nothing extra when fused."""
    return zeros(shape, dtype=dtype, device=device)


def _like(fn):
    def like(x, /, *args, dtype=None, device=None):
        return fn(x.shape, *args, dtype=dtype or x.dtype, device=device or x.device)
    like.__name__ = like.__qualname__ = fn.__name__ + "_like"
    like.__doc__ = f"`{fn.__name__}` with the shape (and by default dtype, device) of `x`."
    return like


zeros_like, ones_like, empty_like, full_like = map(_like, (zeros, ones, empty, full))


def arange(start, /, stop=None, step=1, *, dtype=None, device=None) -> Array:
    """Evenly spaced values in [start, stop): `start + i * step`."""
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        _scalar_dtype(v)
    if step == 0:
        raise ValueError("arange: step must not be zero")
    n = builtins.max(0, math.ceil((stop - start) / step))
    natural = np.arange(start, start + step, step).dtype if n else \
        dt.result_type(*(type(v) for v in (start, stop, step)))
    dtype = dt.check_supported(np.dtype(natural)) if dtype is None else dt.as_dtype(dtype)
    kind = np.int64 if builtins.all(isinstance(v, int) for v in (start, step)) else np.float64
    return _create("arange", (kind(start), kind(step)), (n,), dtype, device)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True) -> Array:
    """`num` evenly spaced numbers from start to stop (inclusive if `endpoint`); complex
    endpoints give complex128 by default."""
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    is_complex = isinstance(start, complex) or isinstance(stop, complex)
    if dtype is None:
        dtype = dt.default_complex if is_complex else dt.default_float
    dtype = dt.as_dtype(dtype)
    if dtype.kind not in "fc" or (is_complex and dtype.kind != "c"):
        raise TypeError(f"linspace: dtype must be a floating-point dtype (a complex one for "
                        f"complex endpoints), got {dtype}")
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0
    last = num - 1 if endpoint and num > 1 else -1
    kind = np.complex128 if dtype.kind == "c" else np.float64
    rt = (kind(start), kind(step), kind(stop), np.int64(last))
    return _create("linspace", rt, (num,), dtype, device)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None) -> Array:
    """Ones on the k-th diagonal, zeros elsewhere."""
    shape = _shape("eye", (n_rows, n_rows if n_cols is None else n_cols))
    dtype = dt.default_float if dtype is None else dt.as_dtype(dtype)
    return _create("eye", (np.int64(k),), shape, dtype, device)


def asarray(obj, /, *, dtype=None, device=None, copy=None) -> Array:
    """An array from a numlazy array, a NumPy array, a Python scalar or nested sequences.

    Host data is copied by default: a lazy result must not change if the source is mutated
    before the step runs. `copy=False` shares the NumPy buffer on host devices (raises where
    sharing is impossible).
    """
    target = parse(device) if device is not None else None
    if isinstance(obj, Array):
        if dtype is not None:
            obj = astype(obj, dtype, copy=bool(copy))
        if target is None or target == obj.device:
            return astype(obj, obj.dtype, copy=True) if copy else obj
        host = np.asarray(obj)
        return asarray(host, device=target)
    target = target or parse(None)
    backend = backend_for(target)
    try:
        host = np.asarray(obj, dtype=None if dtype is None else dt.as_dtype(dtype))
    except (ValueError, TypeError) as exc:
        raise TypeError(f"asarray: cannot convert {type(obj).__name__} to an array: {exc}") \
            from None
    if host.dtype == object:
        raise TypeError("asarray: object arrays are not supported; supported dtypes: "
                        f"{dt.NAMES}")
    host_dtype = dt.check_supported(host.dtype)
    shareable = host.flags.c_contiguous and host.dtype == host_dtype and host.flags.writeable
    if copy is False and not shareable:
        raise ValueError("asarray: copy=False but the data must be copied (not C-contiguous, "
                         "not writeable or not native byte order)")
    host = np.array(host, dtype=host_dtype, order="C", copy=copy is not False)
    buffer = executor.to_device(backend, host, target.index or 0)
    return Array(ir.data(buffer, host.shape, host_dtype, target))


def from_numpy(array: np.ndarray, *, device=None) -> Array:
    return asarray(array, device=device)


def from_dlpack(x, /, *, device=None, copy=None) -> Array:
    """An array from any object with `__dlpack__` (a numlazy array, NumPy, PyTorch, JAX...).
    `device` None keeps the producer's device ("cpu" for host memory, "cuda:<i>" for CUDA).
    Host producers are read through NumPy's DLPack support and shared when `copy` allows on
    host devices. A CUDA producer is asked for a host copy (DLPack's `dl_device`, `copy=True`)
    that is then moved to the device: the data goes through the host, two copies."""
    if isinstance(x, Array):
        return asarray(x, device=device, copy=copy)
    if not hasattr(x, "__dlpack__") or not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: x must support the DLPack protocol (__dlpack__ and "
                        f"__dlpack_device__), got {type(x).__name__}")
    kind, index = x.__dlpack_device__()
    if int(kind) == 2:                                       # kDLCUDA
        if copy is False:
            raise BufferError("from_dlpack: copy=False, but CUDA data is copied through the "
                              "host")
        host = np.from_dlpack(x, device="cpu", copy=True)
        target = device if device is not None else f"cuda:{int(index)}"
        return asarray(host, device=target)
    host = np.from_dlpack(x, copy=copy)
    return asarray(host, device=device if device is not None else "cpu", copy=copy)


# --- opaque ops ----------------------------------------------------------------------------

def matmul(x1, x2, /) -> Array:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting."""
    (x1, x2), device = _operands("matmul", (x1, x2))
    if not isinstance(x1, Array) or not isinstance(x2, Array) or x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("matmul: both operands must be arrays of at least one dimension")
    a = x1.shape if x1.ndim > 1 else (1,) + x1.shape
    b = x2.shape if x2.ndim > 1 else x2.shape + (1,)
    if a[-1] != b[-2]:
        raise ValueError(f"matmul: shapes {x1.shape} and {x2.shape} are not aligned: "
                         f"{a[-1]} (dim {x1.ndim - 1} of x1) != {b[-2]} (dim "
                         f"{builtins.max(x2.ndim - 2, 0)} of x2)")
    batch = _broadcast_shape("matmul", [a[:-2], b[:-2]])
    shape = batch + (a[-2],) * (x1.ndim > 1) + (b[-1],) * (x2.ndim > 1)
    dtype = dt.result_type(x1.dtype, x2.dtype)
    x1, x2 = astype(x1, dtype, copy=False), astype(x2, dtype, copy=False)
    if x1.ndim == 1 or x2.ndim == 1:
        return _matvec(x1, x2)
    return Array(ir.make("matmul", (x1._node, x2._node), (), (), shape, dtype, device))


def _matvec(x1: Array, x2: Array) -> Array:
    """A product with a vector moves each matrix element once and does one multiply-add
    with it: memory-bound, so it is a fused multiply-and-sum rather than a BLAS call (no
    BLAS thread pool fighting Numba's, and `sigmoid(X @ w)` is one pass). Integer products
    wrap like NumPy's (the wider sum is cast back); `A.T @ v` is computed as `v @ A` so the
    matrix is read in memory order."""
    if x2.ndim == 1:
        if x1.ndim == 2 and x1._node.op == "permute":
            out = _matvec(x2, Array(x1._node.srcs[0]))
        else:
            out = sum(multiply(x1, x2), axis=-1)  # noqa: F821
    else:
        out = sum(multiply(expand_dims(x1, axis=-1), x2), axis=-2)  # noqa: F821
    return astype(out, x1.dtype, copy=False)


# --- data types (array API) ----------------------------------------------------------------

def _dtype_of(name: str, x) -> np.dtype:
    if isinstance(x, Array):
        return x.dtype
    try:
        return dt.as_dtype(x)
    except TypeError:
        raise TypeError(f"{name}: expected a dtype or an array, got {x!r}; supported dtypes: "
                        f"{dt.NAMES}") from None


def can_cast(from_, to, /) -> bool:
    """Whether `from_` (a dtype or an array) converts to dtype `to` without losing values."""
    return bool(np.can_cast(_dtype_of("can_cast", from_), _dtype_of("can_cast", to), "safe"))


def result_type(*arrays_and_dtypes) -> np.dtype:
    """The dtype the standard's promotion gives (Python scalars are weak)."""
    if not arrays_and_dtypes:
        raise ValueError("result_type: at least one array or dtype is required")
    kinds = [type(a) if type(a) in _SCALARS else _dtype_of("result_type", a)
             for a in arrays_and_dtypes]
    if builtins.all(isinstance(k, type) for k in kinds):
        raise ValueError("result_type: at least one array or dtype is required besides "
                         "Python scalars")
    return dt.result_type(*kinds)


def finfo(type, /):  # noqa: A002 - array API name
    """Machine limits of a floating-point dtype (NumPy's `finfo`: bits, eps, max, min,
    smallest_normal, dtype). For a complex dtype, those of its components, as the standard
    says (`finfo(complex64).dtype` is float32)."""
    d = _dtype_of("finfo", type)
    if d.kind not in "fc":
        raise TypeError(f"finfo: expected a floating-point dtype (float32, float64, complex64, "
                        f"complex128), got {d}")
    return np.finfo(d)


def iinfo(type, /):  # noqa: A002 - array API name
    """Limits of an integer dtype (NumPy's `iinfo`: bits, max, min, dtype)."""
    d = _dtype_of("iinfo", type)
    if d.kind not in "iu":
        ints = ", ".join(x.name for x in dt.SUPPORTED if x.kind in "iu")
        raise TypeError(f"iinfo: expected an integer dtype ({ints}), got {d}")
    return np.iinfo(d)


_DTYPE_KINDS = ("bool", "signed integer", "unsigned integer", "integral", "real floating",
                "complex floating", "numeric")


def isdtype(dtype, kind) -> bool:
    """Whether `dtype` is of `kind`: a dtype, one of the standard's kind names, or a tuple."""
    d = _dtype_of("isdtype", dtype) if not isinstance(dtype, Array) else None
    if d is None:
        raise TypeError("isdtype: expected a dtype, got an array; pass x.dtype")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, str) and k not in _DTYPE_KINDS:
            raise ValueError(f"isdtype: unknown kind {k!r}; accepted: a dtype or one of "
                             f"{', '.join(map(repr, _DTYPE_KINDS))}")
        if not isinstance(k, str):
            _dtype_of("isdtype", k)
    return bool(np.isdtype(d, tuple(k if isinstance(k, str) else dt.as_dtype(k)
                                    for k in kinds)))


# --- manipulation (array API): index maps, or the interpreter where no map exists -----------

def _axis(name: str, ndim: int, axis, accepted: str = "an int") -> int:
    """`axis` as a non-negative int; TypeError (naming `accepted`) or AxisError otherwise."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: axis must be {accepted}, got {_describe(axis)}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(f"{name}: axis {axis} is out of bounds for an array of "
                                      f"dimension {ndim}")
    return int(axis) % ndim


def _arrays(name: str, arrays) -> tuple[list, Device]:
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise TypeError(f"{name}: arrays must be a non-empty tuple or list of arrays, got "
                        f"{type(arrays).__name__}")
    out, device = _operands(name, arrays)
    for i, a in enumerate(out):
        if not isinstance(a, Array):
            raise TypeError(f"{name}: element {i} of arrays must be an array, got "
                            f"{_describe(a)}")
    return out, device


def concat(arrays, /, *, axis=0) -> Array:
    """Arrays joined along `axis` (None: flattened first); dtypes promote as in arithmetic.
    A gather: fused kernels read each element from its source (offsets are runtime values)."""
    arrays, device = _arrays("concat", arrays)
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    ndim = arrays[0].ndim
    if ndim == 0 or builtins.any(a.ndim != ndim for a in arrays):
        raise ValueError(f"concat: arrays must have the same number of dimensions, at least "
                         f"one; got shapes {', '.join(str(a.shape) for a in arrays)}")
    ax = _axis("concat", ndim, axis)
    rest = [a.shape[:ax] + a.shape[ax + 1:] for a in arrays]
    if builtins.any(r != rest[0] for r in rest):
        raise ValueError(f"concat: shapes {', '.join(str(a.shape) for a in arrays)} differ "
                         f"outside axis {axis}")
    dtype = dt.result_type(*(a.dtype for a in arrays))
    arrays = [astype(a, dtype, copy=False) for a in arrays]
    if len(arrays) == 1:
        return astype(arrays[0], dtype)
    shape = list(arrays[0].shape)
    offsets = [0]
    for a in arrays[:-1]:
        offsets.append(offsets[-1] + a.shape[ax])
    shape[ax] = offsets[-1] + arrays[-1].shape[ax]
    return Array(ir.make("concat", tuple(a._node for a in arrays), (ax,),
                         tuple(np.int64(o) for o in offsets), tuple(shape), dtype, device))


def stack(arrays, /, *, axis=0) -> Array:
    """Arrays of one shape joined along a new axis `axis`."""
    arrays, _ = _arrays("stack", arrays)
    if builtins.any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"stack: arrays must have the same shape, got "
                         f"{', '.join(str(a.shape) for a in arrays)}")
    ax = _axis("stack", arrays[0].ndim + 1, axis)
    return concat([expand_dims(a, axis=ax) for a in arrays], axis=ax)


def roll(x, /, shift, *, axis=None) -> Array:
    """Elements shifted along `axis` (None: the flattened array), wrapping around: the two
    slices of each axis joined in the other order (one fused read of x)."""
    (x,), _ = _operands("roll", (x,))
    if axis is None:
        if not isinstance(shift, (int, np.integer)):
            raise TypeError(f"roll: shift must be an int when axis is None, got "
                            f"{_describe(shift)}")
        return reshape(roll(reshape(x, (-1,)), shift, axis=0), x.shape)
    shifts = shift if isinstance(shift, tuple) else (shift,)
    axes = axis if isinstance(axis, tuple) else (axis,)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift} and axis {axis} must have the same length")
    for s, a in zip(shifts, axes):
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"roll: shift must be an int or a tuple of ints, got {_describe(s)}")
        ax = _axis("roll", x.ndim, a)
        n = x.shape[ax]
        k = int(s) % n if n else 0
        if k:
            lead = (slice(None),) * ax
            x = concat([x[lead + (slice(n - k, None),)], x[lead + (slice(0, n - k),)]],
                       axis=ax)
    return x


def moveaxis(x, source, destination, /) -> Array:
    """`x` with axes `source` moved to positions `destination` (a permutation view)."""
    (x,), _ = _operands("moveaxis", (x,))
    src = source if isinstance(source, tuple) else (source,)
    dst = destination if isinstance(destination, tuple) else (destination,)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must have "
                         f"the same number of elements")
    src = [_axis("moveaxis", x.ndim, a) for a in src]
    dst = [_axis("moveaxis", x.ndim, a) for a in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in source {source} or destination "
                         f"{destination}")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_dims(x, tuple(order))


def tile(x, repetitions, /) -> Array:
    """`x` repeated `repetitions[d]` times along each axis: a broadcast view, reshaped."""
    (x,), _ = _operands("tile", (x,))
    reps = tuple(repetitions) if isinstance(repetitions, (tuple, list)) else (repetitions,)
    reps = _shape("tile", reps)
    d = builtins.max(x.ndim, len(reps))
    shape = (1,) * (d - x.ndim) + x.shape
    reps = (1,) * (d - len(reps)) + reps
    inter = tuple(v for pair in zip((1,) * d, shape) for v in pair)
    wide = tuple(v for pair in zip(reps, shape) for v in pair)
    return reshape(broadcast_to(reshape(x, inter), wide),
                   tuple(r * s for r, s in zip(reps, shape)))


def repeat(x, repeats, /, *, axis=None) -> Array:
    """Each element repeated `repeats` (an int) times along `axis` (None: flattened first):
    a broadcast view, reshaped."""
    (x,), _ = _operands("repeat", (x,))
    if isinstance(repeats, Array) or not isinstance(repeats, (int, np.integer)) or \
            isinstance(repeats, bool):
        raise TypeError(f"repeat: repeats must be an int (per-element repeats, whose result "
                        f"shape depends on values, are not supported yet), got "
                        f"{_describe(repeats)}")
    if repeats < 0:
        raise ValueError(f"repeat: repeats must be non-negative, got {repeats}")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = _axis("repeat", x.ndim, axis)
    wide = x.shape[:ax + 1] + (int(repeats),) + x.shape[ax + 1:]
    out = x.shape[:ax] + (x.shape[ax] * int(repeats),) + x.shape[ax + 1:]
    return reshape(broadcast_to(expand_dims(x, axis=ax + 1), wide), out)


def meshgrid(*arrays, indexing="xy") -> list:
    """Coordinate grids from 1-D arrays, as broadcast views; `indexing` "xy" (Cartesian: the
    first two axes swapped) or "ij" (matrix)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    if not arrays:
        return []
    arrays, _ = _arrays("meshgrid", arrays)
    for i, a in enumerate(arrays):
        if a.ndim != 1:
            raise ValueError(f"meshgrid: arrays must be 1-D, argument {i} has shape {a.shape}")
    sizes = [a.shape[0] for a in arrays]
    pos = list(range(len(arrays)))
    if indexing == "xy" and len(arrays) > 1:
        pos[0], pos[1] = 1, 0
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for a, p in zip(arrays, pos):
        shape = [1] * len(arrays)
        shape[p] = a.shape[0]
        out.append(broadcast_to(reshape(a, tuple(shape)), tuple(sizes)))
    return out


def _triangle(name, x, k, keep):
    (x,), _ = _operands(name, (x,))
    if x.ndim < 2:
        raise ValueError(f"{name}: x must have at least 2 dimensions, got shape {x.shape}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"{name}: k must be an int, got {_describe(k)}")
    n, m = x.shape[-2:]
    offset = subtract(arange(m, device=x.device)[None, :],  # noqa: F821
                      arange(n, device=x.device)[:, None])
    return where(keep(offset, int(k)), x, full((), 0, dtype=x.dtype, device=x.device))


def tril(x, /, *, k=0) -> Array:
    """`x` with elements above the k-th diagonal zeroed (of the last two axes)."""
    return _triangle("tril", x, k, less_equal)  # noqa: F821


def triu(x, /, *, k=0) -> Array:
    """`x` with elements below the k-th diagonal zeroed (of the last two axes)."""
    return _triangle("triu", x, k, greater_equal)  # noqa: F821


# --- linear algebra ------------------------------------------------------------------------

def vecdot(x1, x2, /, *, axis=-1) -> Array:
    """Dot products of vectors along `axis` (broadcast over the other axes): a fused
    multiply-and-sum; the result keeps the promoted dtype (integers wrap as NumPy's)."""
    (x1, x2), _ = _operands("vecdot", (x1, x2))
    if not isinstance(x1, Array) or not isinstance(x2, Array) or x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("vecdot: both operands must be arrays of at least one dimension")
    shape = _broadcast_shape("vecdot", [x1.shape, x2.shape])
    ax = _axis("vecdot", len(shape), axis) - len(shape)
    if -ax > builtins.min(x1.ndim, x2.ndim) or x1.shape[ax] != x2.shape[ax]:
        raise ValueError(f"vecdot: shapes {x1.shape} and {x2.shape} differ in size along "
                         f"axis {axis}")
    dtype = dt.result_type(x1.dtype, x2.dtype)
    if dt.is_complex(x1.dtype):
        x1 = conj(x1)  # noqa: F821 - the standard conjugates the first operand
    return astype(sum(multiply(x1, x2), axis=ax), dtype, copy=False)  # noqa: F821


def tensordot(x1, x2, /, *, axes=2) -> Array:
    """Sum of products over `axes` (an int n: the last n of x1 with the first n of x2, or two
    sequences of axes): permuted and reshaped views around one matmul."""
    (x1, x2), _ = _operands("tensordot", (x1, x2))
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        if not 0 <= axes <= builtins.min(x1.ndim, x2.ndim):
            raise ValueError(f"tensordot: axes={axes} must be between 0 and the smaller rank "
                             f"({builtins.min(x1.ndim, x2.ndim)}) of shapes {x1.shape} and "
                             f"{x2.shape}")
        a1, a2 = list(range(x1.ndim - axes, x1.ndim)), list(range(axes))
    elif isinstance(axes, (tuple, list)) and len(axes) == 2:
        a1 = [_axis("tensordot", x1.ndim, a) for a in axes[0]]
        a2 = [_axis("tensordot", x2.ndim, a) for a in axes[1]]
        if len(a1) != len(a2):
            raise ValueError(f"tensordot: axes {axes} must name as many axes of x1 as of x2")
    else:
        raise TypeError(f"tensordot: axes must be an int or a pair of sequences of ints, got "
                        f"{axes!r}")
    for i, j in zip(a1, a2):
        if x1.shape[i] != x2.shape[j]:
            raise ValueError(f"tensordot: shapes {x1.shape} and {x2.shape} differ along "
                             f"contracted axes {i} (x1) and {j} (x2)")
    free1 = [d for d in range(x1.ndim) if d not in a1]
    free2 = [d for d in range(x2.ndim) if d not in a2]
    k = math.prod(x1.shape[d] for d in a1)
    left = reshape(_permuted_copy(x1, free1 + a1), (math.prod(x1.shape[d] for d in free1), k))
    right = reshape(_permuted_copy(x2, a2 + free2), (k, math.prod(x2.shape[d] for d in free2)))
    return reshape(matmul(left, right), tuple(x1.shape[d] for d in free1) +
                   tuple(x2.shape[d] for d in free2))


def _permuted_copy(x: Array, axes: list) -> Array:
    """`x` permuted, computed into a contiguous buffer by a copy kernel when the order
    changes: matmul (an opaque op) receives its operands' views applied to device buffers,
    and a reshape of a transposed buffer is no view (Numba's CUDA arrays refuse it)."""
    out = permute_dims(x, tuple(axes))
    return out if out is x else astype(out, out.dtype, copy=True)


# --- indexing: take (a gather that reads its indices from an array) ------------------------

def take(x, indices, /, *, axis=None) -> Array:
    """Elements of `x` at the 1-D integer array `indices` along `axis` (required when x has
    more than one dimension). Fused: the consumer's kernel reads each index, then x there.
    Negative indices count from the end; indices outside [-n, n), which the standard leaves
    unspecified, are clipped to the first or last element (a kernel never reads outside x).

        >>> import numpy as np, numlazy as nl
        >>> nl.take(nl.asarray([10, 20, 30]), nl.asarray([2, 0, -1])).tolist()
        [30, 10, 30]
    """
    (x, indices), _ = _operands("take", (x, indices))
    if not isinstance(x, Array) or x.ndim == 0:
        raise ValueError("take: x must be an array of at least one dimension")
    if not isinstance(indices, Array) or not dt.is_integer(indices.dtype):
        got = indices.dtype if isinstance(indices, Array) else _describe(indices)
        raise TypeError(f"take: indices must be an array of an integer dtype, got {got}")
    if indices.ndim != 1:
        raise ValueError(f"take: indices must be 1-D, got shape {indices.shape}")
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is required for x of shape {x.shape} (more than "
                             f"one dimension)")
        axis = 0
    return _take(x, indices, _axis("take", x.ndim, axis))


def _take(x: Array, indices: Array, axis: int) -> Array:
    n = x.shape[axis]
    if n == 0 and indices.size:
        raise IndexError(f"take: cannot take {indices.size} element(s) from axis {axis} of "
                         f"size 0 (shape {x.shape})")
    shape = x.shape[:axis] + indices.shape + x.shape[axis + 1:]
    indices = astype(indices, dt.int64, copy=False)
    return Array(ir.make("take", (x._node, indices._node), (axis,), (np.int64(n),), shape,
                         x.dtype, x.device))


# --- statistics, searching, sorting, sets ---------------------------------------------------

def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False) -> Array:
    """Running sums along `axis` (required above one dimension); integers sum in the default
    integer type. Runs on the interpreter for now (`fallback::cumulative_sum`)."""
    (x,), device = _operands("cumulative_sum", (x,))
    if x.ndim == 0:
        raise ValueError("cumulative_sum: x must have at least one dimension")
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative_sum: axis is required for an array of shape "
                             f"{x.shape}")
        axis = 0
    ax = _axis("cumulative_sum", x.ndim, axis)
    if dtype is not None:
        x = astype(x, dtype, copy=False)
    shape = list(x.shape)
    shape[ax] += bool(include_initial)
    return Array(ir.make("cumulative_sum", (x._node,), (ax, bool(include_initial)), (),
                         tuple(shape), ops.reduce_dtype("sum", x.dtype), device))


def _sort_node(name, x, axis, descending, stable, dtype):
    (x,), device = _operands(name, (x,))
    _check_domain(name, (x.dtype,))
    if x.ndim == 0:
        raise ValueError(f"{name}: x must have at least one dimension")
    ax = _axis(name, x.ndim, axis)
    if not isinstance(descending, bool) or not isinstance(stable, bool):
        raise TypeError(f"{name}: descending and stable must be bools")
    return Array(ir.make(name, (x._node,), (ax, descending), (), x.shape,
                         dtype or x.dtype, device))


def sort(x, /, *, axis=-1, descending=False, stable=True) -> Array:
    """Values sorted along `axis` (always stable). Runs on the interpreter for now."""
    return _sort_node("sort", x, axis, descending, stable, None)


def argsort(x, /, *, axis=-1, descending=False, stable=True) -> Array:
    """Indices that sort `x` along `axis`; equal values keep their order, also descending."""
    return _sort_node("argsort", x, axis, descending, stable, dt.int64)


def _read(name: str, x) -> np.ndarray:
    """Host values of `x` for an op whose result shape depends on them: a step boundary for
    x's graph, counted as `fallback::<name>`."""
    from . import metrics
    metrics.increment(f"fallback::{name}")
    return np.asarray(x)


def nonzero(x, /) -> tuple:
    """Indices of the non-zero elements, one int64 array per axis (reads `x`)."""
    (x,), _ = _operands("nonzero", (x,))
    if x.ndim == 0:
        raise ValueError("nonzero: x must have at least one dimension (NumPy 2 refuses 0-d)")
    return tuple(asarray(i.astype(np.int64), device=x.device)
                 for i in np.nonzero(_read("nonzero", x)))


def searchsorted(x1, x2, /, *, side="left", sorter=None) -> Array:
    """Indices where the elements of `x2` would be inserted into the 1-D `x1` (sorted
    ascending, or in the order `sorter` gives) to keep it sorted; `side` "left" (first
    suitable position) or "right" (last). Runs on the interpreter for now
    (`fallback::searchsorted`); `sorter` is a fused `take`."""
    (x1, x2), device = _operands("searchsorted", (x1, x2))
    if not isinstance(x1, Array) or x1.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be a 1-D array, got shape "
                         f"{getattr(x1, 'shape', ())}")
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        (sorter,), _ = _operands("searchsorted", (sorter,))
        if not dt.is_integer(sorter.dtype):
            raise TypeError(f"searchsorted: sorter must have an integer dtype, got "
                            f"{sorter.dtype}")
        if sorter.shape != x1.shape:
            raise ValueError(f"searchsorted: sorter must have x1's shape {x1.shape}, got "
                             f"{sorter.shape}")
        x1 = take(x1, sorter)
    if isinstance(x2, Array):
        dtype = dt.result_type(x1.dtype, x2.dtype)
    else:          # a Python scalar: its own dtype where x1's cannot hold it (int8 and 1000)
        info = np.iinfo(x1.dtype) if type(x2) is int and dt.is_integer(x1.dtype) else None
        wide = info is not None and not info.min <= x2 <= info.max
        dtype = dt.result_type(x1.dtype, np.asarray(x2).dtype if wide else type(x2))
        x2 = asarray(x2, dtype=dtype, device=device)
    x1 = astype(x1, dtype, copy=False)
    x2 = astype(x2, dtype, copy=False)
    return Array(ir.make("searchsorted", (x1._node, x2._node), (side,), (), x2.shape,
                         dt.int64, device))


def unique_values(x, /) -> Array:
    """The distinct values of `x`, sorted, flattened (reads `x`)."""
    (x,), _ = _operands("unique_values", (x,))
    return asarray(np.unique_values(_read("unique_values", x).reshape(-1)), device=x.device)


# The standard's result tuples (field names as in the standard).
UniqueAllResult = collections.namedtuple("UniqueAllResult",
                                         "values indices inverse_indices counts")
UniqueCountsResult = collections.namedtuple("UniqueCountsResult", "values counts")
UniqueInverseResult = collections.namedtuple("UniqueInverseResult", "values inverse_indices")


def _unique(name: str, x, result):
    """NumPy's `np.<name>` on the values of `x` (read: a step boundary, counted), each field
    back on x's device; integer fields are int64. `inverse_indices` has x's shape."""
    (x,), _ = _operands(name, (x,))
    found = getattr(np, name)(_read(name, x))
    return result(*(asarray(f if field == "values" else f.astype(np.int64), device=x.device)
                    for field, f in zip(result._fields, found)))


def unique_all(x, /) -> UniqueAllResult:
    """Distinct values of `x` (sorted), the flat index of each one's first occurrence, the
    index into `values` of every element of x (x's shape), and each value's count."""
    return _unique("unique_all", x, UniqueAllResult)


def unique_counts(x, /) -> UniqueCountsResult:
    """Distinct values of `x` (sorted) and how often each occurs."""
    return _unique("unique_counts", x, UniqueCountsResult)


def unique_inverse(x, /) -> UniqueInverseResult:
    """Distinct values of `x` (sorted) and, for every element of x, its index in them."""
    return _unique("unique_inverse", x, UniqueInverseResult)


# --- functional updates and NumPy interop --------------------------------------------------

def _basic_entries(x: Array, key, accepted="integers, slices (`:`), ellipsis (`...`) and "
                   "None") -> list:
    """Entries of a basic index for `_index_view`: ('f',) a full dim, ('s', start, step,
    length), ('i', index), ('n',) a new axis. IndexError naming the `accepted` keys."""
    key = key if isinstance(key, tuple) else (key,)
    n_ellipsis = builtins.sum(k is Ellipsis for k in key)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = builtins.sum(k is not None and k is not Ellipsis for k in key)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but "
                         f"{consumed} were indexed")
    if n_ellipsis == 0:
        key = key + (Ellipsis,)
    entries, d = [], 0
    for k in key:
        if k is Ellipsis:
            entries += [("f",)] * (x.ndim - consumed)
            d += x.ndim - consumed
        elif k is None:
            entries.append(("n",))
        elif isinstance(k, slice):
            start, stop, step = k.indices(x.shape[d])
            length = len(range(start, stop, step))
            full = start == 0 and step == 1 and length == x.shape[d]
            entries.append(("f",) if full else ("s", start if length else 0, step, length))
            d += 1
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            n = x.shape[d]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for axis {d} with size {n}")
            entries.append(("i", int(k) % n))
            d += 1
        else:
            raise IndexError(f"only {accepted} are valid indices, got {_describe(k)}")
    return entries


def _update_value(x: Array, value, shape) -> Array:
    """`value` as an array of x's dtype broadcast to `shape`; the standard's promotion must
    not change x's dtype (an int array takes no floats)."""
    if type(value) in _SCALARS:
        dt.check_scalar_fits(value, x.dtype, "setitem")
        if dt.result_type(x.dtype, type(value)) != x.dtype:
            raise TypeError(f"setitem: cannot assign Python {type(value).__name__} {value!r} to "
                            f"an array of dtype {x.dtype}")
        return full(shape, value, dtype=x.dtype, device=x.device)
    (value,), _ = _operands("setitem", (value,))
    if value.device != x.device:
        raise ValueError(f"setitem: the value is on {value.device}, the array on {x.device}")
    if dt.result_type(x.dtype, value.dtype) != x.dtype:
        raise TypeError(f"setitem: cannot assign values of dtype {value.dtype} to an array of "
                        f"dtype {x.dtype} (it would promote to "
                        f"{dt.result_type(x.dtype, value.dtype)})")
    try:
        return broadcast_to(astype(value, x.dtype, copy=False), shape)
    except ValueError:
        raise ValueError(f"setitem: value of shape {value.shape} cannot be broadcast to the "
                         f"indexed shape {shape}") from None


def setitem(x: Array, key, value) -> None:
    """`x[key] = value` as a functional update: x now names a new node (x with the indexed
    elements replaced) and nothing runs until a step. Views taken of x before keep the old
    values. Keys: basic indices (ints, slices, None, ...) or a boolean array of x's shape
    (then `value` must be a scalar or 0-d)."""
    if isinstance(key, (Array, np.ndarray)) and np.dtype(key.dtype) == dt.bool_:
        (mask,), _ = _operands("setitem", (key,))
        if mask.shape != x.shape:
            raise IndexError(f"setitem: a boolean index must have the array's shape "
                             f"{x.shape}, got {mask.shape}")
        if not (type(value) in _SCALARS or getattr(value, "ndim", None) == 0):
            raise ValueError("setitem: with a boolean index the value must be a scalar or a "
                             "0-d array (the number of selected elements depends on values)")
        x._set_node(where(mask, _update_value(x, value, ()), x)._node)
        return
    entries = _basic_entries(x, key, "integers, slices (`:`), ellipsis (`...`), None and a "
                                     "boolean array of the array's shape")
    view_shape = _index_view("setitem", x, entries).shape
    new = _update_value(x, value, view_shape)
    kinds = tuple(e[0] for e in entries)
    rt = tuple(np.int64(v) for e in entries for v in e[1:])
    x._set_node(ir.make("setitem", (x._node, new._node), (kinds,), rt, x.shape, x.dtype,
                        x.device))


# NumPy names of the op table's elementwise ufuncs, and NumPy functions numlazy spells
# otherwise; `np.<name>(x)` of a numlazy array records the numlazy op.
_UFUNC_NAMES = {op.ufunc: name for name, op in ops.TABLE.items()
                if op.kind == ops.ELEMENTWISE and op.ufunc is not None}
_UFUNC_NAMES.update({np.matmul: "matmul", np.vecdot: "vecdot"})     # generalized ufuncs
_FUNCTION_NAMES = {"concatenate": "concat", "transpose": "permute_dims", "power": "pow",
                   "absolute": "abs", "around": "round"}
_METADATA = ("shape", "ndim", "size")       # np.shape(x) needs no values


def _to_numpy(obj):
    if isinstance(obj, Array):
        return np.asarray(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(o) for o in obj)
    return obj


def _from_numpy(obj, device):
    if isinstance(obj, np.ndarray):
        return asarray(obj, device=device)
    if isinstance(obj, tuple):
        return tuple(_from_numpy(o, device) for o in obj)
    return obj


def _numpy_fallback(name: str, fn, args, kwargs, device):
    """NumPy's own function on the arrays' values (a step boundary), results back on the
    device (NumPy `out=` arrays stay NumPy's); counted as `fallback::np.<name>`."""
    from . import metrics
    out = kwargs.get("out")
    if _device_of(out if isinstance(out, tuple) else (out,)) is not None:
        raise TypeError(f"np.{name}: a numlazy array cannot be NumPy's out= target; assign the "
                        f"result instead (x[...] = ...)")
    metrics.increment(f"fallback::np.{name}")
    result = fn(*_to_numpy(args), **{k: _to_numpy(v) for k, v in kwargs.items()})
    return result if out is not None else _from_numpy(result, device)


def _device_of(args):
    for a in args:
        if isinstance(a, Array):
            return a.device
        if isinstance(a, (list, tuple)):
            d = _device_of(a)
            if d is not None:
                return d
    return None


def array_ufunc(ufunc, method, inputs, kwargs):
    """`Array.__array_ufunc__`: a plain call of a ufunc in the op table records the op;
    anything else (reduce/accumulate, `out=`, `where=`...) runs in NumPy, counted."""
    name = _UFUNC_NAMES.get(ufunc)
    if method == "__call__" and name is not None and (not kwargs or name == "vecdot"):
        try:
            return globals()[name](*inputs, **kwargs)
        except TypeError:
            if not kwargs:                 # numlazy refuses these dtypes: so would NumPy
                raise
    fn = ufunc if method == "__call__" else getattr(ufunc, method)
    return _numpy_fallback(f"{ufunc.__name__}.{method}" if method != "__call__" else
                           ufunc.__name__, fn, inputs, kwargs, _device_of(inputs))


def array_function(func, args, kwargs):
    """`Array.__array_function__`: `np.sum(x)`, `np.reshape(x, s)`, `np.concatenate(...)`
    record the numlazy function of that name where it takes the same arguments; otherwise
    NumPy runs on the values, counted as `fallback::np.<name>`."""
    name = _FUNCTION_NAMES.get(func.__name__, func.__name__)
    if name in _METADATA and len(args) == 1 and not kwargs and isinstance(args[0], Array):
        return getattr(args[0], name)
    fn = globals().get(name)
    if fn is not None and name in __all__:
        try:
            return fn(*args, **kwargs)
        except TypeError:          # NumPy-only arguments (`out=`, `ddof=`...): NumPy runs it
            pass
    return _numpy_fallback(func.__name__, func, args, kwargs, _device_of(args))


__all__ = sorted(
    [name for name, value in globals().items()
     if callable(value) and not name.startswith("_") and not isinstance(value, type)
     and getattr(value, "__module__", None) == __name__
     and name not in ("getitem", "setitem", "array_ufunc", "array_function")])
