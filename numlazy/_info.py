"""`__array_namespace_info__()`: what this namespace supports, as the array API standard
(2023.12) asks an inspection object to say."""
from __future__ import annotations

from . import dtypes as dt
from .device import Device, parse
from .registry import backend_for, list_backends

# The standard's dtype kinds and the dtypes of each, by NumPy's kind letter.
_KINDS = {"bool": "b", "signed integer": "i", "unsigned integer": "u", "integral": "iu",
          "real floating": "f", "complex floating": "c", "numeric": "iufc"}


class Info:
    """The namespace's capabilities, devices and dtypes. `device` arguments are accepted for
    the standard's signature: every device supports every dtype numlazy has."""

    def capabilities(self) -> dict:
        """Boolean masks and data-dependent shapes (`nonzero`, `unique_*`) are supported;
        they read their input (a step boundary, counted)."""
        return {"boolean indexing": True, "data-dependent shapes": True}

    def default_device(self) -> Device:
        """The device new arrays go to (`NUMLAZY_DEVICE`, or a `default_device` scope)."""
        return parse(None)

    def default_dtypes(self, *, device=None) -> dict:
        if device is not None:
            backend_for(parse(device))
        return {"real floating": dt.default_float, "complex floating": dt.complex128,
                "integral": dt.default_int, "indexing": dt.int64}

    def dtypes(self, *, device=None, kind=None) -> dict:
        """{name: dtype} of the dtypes of `kind`: None (all), a kind name ("bool", "signed
        integer", "unsigned integer", "integral", "real floating", "complex floating",
        "numeric") or a tuple of kind names (their union)."""
        if device is not None:
            backend_for(parse(device))
        kinds = kind if isinstance(kind, tuple) else (kind,)
        letters = ""
        for k in kinds:
            if k is None and len(kinds) == 1:
                letters = "biufc"
            elif k not in _KINDS:
                raise ValueError(f"dtypes: kind must be None, one of "
                                 f"{', '.join(map(repr, _KINDS))} or a tuple of them, got "
                                 f"{k!r}")
            else:
                letters += _KINDS[k]
        return {d.name: d for d in dt.SUPPORTED if d.kind in letters}

    def devices(self) -> list:
        """Every device of every registered backend that can run here."""
        out = []
        for name in list_backends():
            try:
                count = backend_for(parse(name)).device_count()
            except (RuntimeError, ValueError):
                continue
            out += [parse(name)] if count == 1 else [Device(name, i) for i in range(count)]
        return out


def __array_namespace_info__() -> Info:
    """The namespace inspection object of the array API standard.

        >>> import numlazy as nl
        >>> info = nl.__array_namespace_info__()
        >>> sorted(info.dtypes(kind="real floating"))
        ['float32', 'float64']
    """
    return Info()
