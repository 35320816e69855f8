"""numlazy: NumPy-style array code recorded lazily, fused, and run as Numba kernels.

    >>> import numpy as np, numlazy as nl
    >>> a = nl.asarray(np.arange(4.0))
    >>> y = nl.sin(a) * 2 + a            # recorded, not run
    >>> nl.mark_step()                   # one fused kernel
    >>> np.asarray(y).round(3).tolist()
    [0.0, 2.683, 3.819, 3.282]
"""
__version__ = "0.1.0"

from . import config, metrics  # noqa: E402
from .dtypes import (bool_ as bool, int8, int16, int32, int64, uint8, uint16,  # noqa: E402
                     uint32, uint64, float32, float64, complex64, complex128)
from ._array import Array  # noqa: E402
from .api import *  # noqa: E402,F401,F403
from .device import Device, device, default_device  # noqa: E402
from .executor import (get_tensor_id, mark_step, step, sync, sync_multi,  # noqa: E402
                       to_cpu, wait_device_ops)
from .closures import add_step_closure, get_device_context, run_step_closures  # noqa: E402
from .serialize import load, save  # noqa: E402
from .compile import compile  # noqa: E402,A001
from . import debug, fft, ir_cache, linalg  # noqa: E402
from ._info import __array_namespace_info__  # noqa: E402
from . import accelerator, backends  # noqa: E402
from .registry import Backend, list_backends, register_backend  # noqa: E402

e, pi, inf, nan = 2.718281828459045, 3.141592653589793, float("inf"), float("nan")
newaxis = None

config.check_device_type()
