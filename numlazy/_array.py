"""The `Array` handle: a pending graph node or, after a step, a device buffer.

Operators and methods record ops through `numlazy.api` (which reads the op table); reading a
value (`np.asarray(x)`, `float(x)`, `x.item()`, `x.tolist()`, printing) computes it, together
with every live array inside its pending subgraph.
"""
from __future__ import annotations

import numpy as np

from . import executor
from .device import Device

_new_uid, _track = executor.new_uid, executor.track     # every recorded op calls both

class Array:
    __slots__ = ("_node", "_uid", "__weakref__")
    __array_priority__ = 100       # NumPy defers `ndarray + Array` to us

    def __init__(self, node):
        self._uid = _new_uid()
        self._node = node
        if node.buffer is None:
            _track(self)

    def _set_node(self, node) -> None:
        """In-place update: the array now names another node (same shape and dtype)."""
        self._node = node
        if not node.realized:
            executor.track(self)

    # -- attributes -------------------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self._node.shape

    @property
    def dtype(self) -> np.dtype:
        return self._node.dtype

    @property
    def device(self) -> Device:
        return self._node.device

    @property
    def ndim(self) -> int:
        return len(self._node.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._node.shape, dtype=np.int64))

    @property
    def T(self) -> "Array":
        if self.ndim != 2:
            raise ValueError(f"x.T needs a 2-D array, got shape {self.shape}; use "
                             f"permute_dims or mT for other ranks")
        return api.permute_dims(self, (1, 0))

    @property
    def mT(self) -> "Array":
        if self.ndim < 2:
            raise ValueError(f"x.mT needs at least 2 dimensions, got shape {self.shape}")
        return api.matrix_transpose(self)

    def __array_namespace__(self, *, api_version=None):
        import numlazy
        if api_version not in (None, "2023.12"):
            raise ValueError(f"unsupported array API version {api_version!r}; supported: "
                             f"'2023.12'")
        return numlazy

    def to_device(self, device, /, *, stream=None) -> "Array":
        return api.asarray(self, device=device)

    def astype(self, dtype, copy: bool = True) -> "Array":
        return api.astype(self, dtype, copy=copy)

    # -- reading values (materializes) -------------------------------------------------------

    def _host(self) -> np.ndarray:
        executor.materialize(self)
        from .registry import backend_for
        host = np.asarray(executor.to_host(backend_for(self.device), self._node.buffer)).view()
        host.flags.writeable = False          # the buffer may be shared with pending graphs
        return host

    def __array__(self, dtype=None, copy=None):
        host = self._host()
        if dtype is not None:
            host = host.astype(dtype, copy=False)
        return host.copy() if copy else host

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs an array of size 1, got shape {self.shape}")
        return self._host().reshape(-1)[0].item()

    def tolist(self):
        return self._host().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __bool__(self):
        return bool(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise TypeError(f"only 0-d integer arrays can be used as an index, got "
                            f"{self.dtype} of shape {self.shape}")
        return int(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="Array(")
        return f"Array({body}, dtype={self.dtype}, device='{self.device}')"

    def __str__(self):
        return str(self._host())

    __hash__ = None

    # -- DLPack and the CUDA array interface (zero-copy exchange; both materialize) ----------

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule of the computed values (host devices, through NumPy's DLPack
        support). The capsule is read-only where the consumer's DLPack version can say so
        (1.0 and later); for older consumers the values are copied (`copy=False` then raises
        BufferError). CUDA arrays raise BufferError: use `__cuda_array_interface__`."""
        if self.device.type == "cuda":
            raise BufferError("__dlpack__ is not supported for CUDA arrays yet; use "
                              "__cuda_array_interface__ (CuPy, PyTorch, JAX and Numba read it "
                              "without a copy)")
        host = self._host()
        if max_version is None or tuple(max_version) < (1, 0):
            if copy is False:
                raise BufferError("__dlpack__: copy=False, but a DLPack version before 1.0 "
                                  "cannot mark the shared buffer read-only")
            host, copy = host.copy(), None
        return host.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device,
                               copy=copy)

    def __dlpack_device__(self) -> tuple:
        """(DLPack device type, index): (1, 0) for host devices, (2, index) for CUDA."""
        if self.device.type == "cuda":
            return (2, self.device.index or 0)
        return (1, 0)

    @property
    def __cuda_array_interface__(self) -> dict:
        """The CUDA array interface of the computed device buffer (CUDA arrays only: others
        raise AttributeError, so `hasattr` is False). Zero-copy: the consumer must not write
        to it, since pending graphs may share the buffer."""
        if self.device.type != "cuda":
            raise AttributeError(f"__cuda_array_interface__ exists only on CUDA arrays; this "
                                 f"array is on {self.device}")
        executor.materialize(self)
        try:
            return self._node.buffer.__cuda_array_interface__
        except AttributeError:
            raise AttributeError("__cuda_array_interface__: this CUDA buffer has none (Numba's "
                                 "CUDA simulator does not provide it)") from None

    # -- indexing ----------------------------------------------------------------------------

    def __getitem__(self, key):
        return api.getitem(self, key)

    def __setitem__(self, key, value):
        api.setitem(self, key, value)

    # -- NumPy protocols: np.sin(x), np.sum(x) stay lazy where numlazy has the op ----------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return api.array_function(func, args, kwargs)


def _binary(name, reflected=False):
    fn = None                           # api's function, bound at the first call

    def method(self, other):
        nonlocal fn
        if fn is None:
            fn = getattr(api, name)
        return fn(other, self) if reflected else fn(self, other)
    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


def _inplace(name):
    def method(self, other):
        result = getattr(api, name)(self, other)
        if result.dtype != self.dtype or result.shape != self.shape:
            raise TypeError(f"in-place {name} would change {self.dtype}{list(self.shape)} to "
                            f"{result.dtype}{list(result.shape)}; in-place results must keep "
                            f"the array's dtype and shape")
        self._set_node(result._node)
        return self
    return method


_OPERATORS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "pow", "matmul": "matmul",
    "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "lshift": "bitwise_left_shift", "rshift": "bitwise_right_shift",
}
for _dunder, _fn in _OPERATORS.items():
    setattr(Array, f"__{_dunder}__", _binary(_fn))
    setattr(Array, f"__r{_dunder}__", _binary(_fn, reflected=True))
    setattr(Array, f"__i{_dunder}__", _inplace(_fn))
for _dunder, _fn in {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                     "gt": "greater", "ge": "greater_equal"}.items():
    setattr(Array, f"__{_dunder}__", _binary(_fn))
for _dunder, _fn in {"neg": "negative", "pos": "positive", "abs": "abs",
                     "invert": "bitwise_invert"}.items():
    setattr(Array, f"__{_dunder}__", lambda self, _fn=_fn: getattr(api, _fn)(self))

from . import api  # noqa: E402  (api builds on Array)
