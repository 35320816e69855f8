"""16-byte loads and stores for generated elementwise and row kernels.

Numba compiles `a[i]` to a scalar `ld.global.f32`, even in a loop unrolled by four, because
it cannot know that `a`'s data is 16-byte aligned. On an H200 the best hand-unrolled scalar
float32 chain kernel reached 4.07 TB/s; torch.compile's 4.38 TB/s comes from 128-bit vector
accesses (bench/NOTES.md, sessions 12 and 13: with these, numlazy's chain reaches 4.17–4.29
TB/s). These intrinsics give a kernel those accesses:

    x0, x1, x2, x3 = vldg(a, j)           # a.flat[4j : 4j+4] in one ld.global.nc.v4.f32
    vstore(out, j, y0, y1, y2, y3)        # out.flat[4j : 4j+4] in one st.global.v4.f32
    if aligned16(a) and aligned16(out):   # one AND per array, hoisted out of the loop

The number of lanes is 16 // itemsize: 4 for 4-byte dtypes, 2 for 8-byte ones. `vldg` marks
its load invariant (the read-only data cache), so it is only for arrays the kernel does not
write. Nothing is bounds-checked: callers loop `j < n // lanes` and finish the tail with
scalar code. Arrays of any rank are read in their flat (C) order. An array that is not
C-contiguous types, but `aligned16` is False for it at compile time, so a guarded vector
access to it is dead code.

Under Numba's CUDA simulator kernels run as Python: the same names are plain functions
there, and they assert the alignment a GPU would fault on.
"""
from __future__ import annotations

from numba.cuda.core import config

from .render import VECTOR_BYTES, lanes

if config.ENABLE_CUDASIM:
    def _flat(arr, j):
        """(the elements of C-contiguous `arr` in order, the lanes of its dtype)."""
        count = lanes(arr.dtype)
        address = arr.ctypes.data + count * j * arr.dtype.itemsize
        assert arr.flags.c_contiguous, "vector access to an array that is not C-contiguous"
        assert address % VECTOR_BYTES == 0, "vector access to a misaligned address"
        return arr.reshape(-1), count

    def vldg(arr, j):
        flat, count = _flat(arr, j)
        return tuple(flat[count * j + k] for k in range(count))

    def vstore(arr, j, *values):
        flat, count = _flat(arr, j)
        assert len(values) == count, f"vstore: {count} values for {arr.dtype}"
        for k in range(count):
            flat[count * j + k] = values[k]

    def aligned16(arr) -> bool:
        return arr.flags.c_contiguous and arr.ctypes.data % VECTOR_BYTES == 0

else:
    from llvmlite import ir
    from numba.cuda import types
    from numba.cuda.core.errors import TypingError
    from numba.cuda.extending import intrinsic

    _I32 = ir.IntType(32)
    _I64 = ir.IntType(64)

    def _lanes_of(name: str, arr, j) -> int:
        if not isinstance(arr, types.Array):
            raise TypingError(f"{name}: expected an array, got {arr}")
        count = lanes(str(arr.dtype)) \
            if isinstance(arr.dtype, (types.Float, types.Integer)) else 0
        if not count:
            raise TypingError(f"{name}: 4- or 8-byte integer or float elements only, "
                              f"got {arr.dtype}")
        if not isinstance(j, types.Integer):
            raise TypingError(f"{name}: the vector index must be an integer, got {j}")
        return count

    def _vector_pointer(context, builder, arr_type, arr, j_type, j, count):
        """A pointer to the `count`-lane vector at element `count * j` of the array."""
        data = context.make_array(arr_type)(context, builder, value=arr).data
        vector = ir.VectorType(context.get_value_type(arr_type.dtype), count)
        j = context.cast(builder, j, j_type, types.intp)
        return builder.gep(builder.bitcast(data, vector.as_pointer()), [j], inbounds=True)

    @intrinsic
    def vldg(typingctx, arr, j):
        count = _lanes_of("vldg", arr, j)

        def codegen(context, builder, sig, args):
            pointer = _vector_pointer(context, builder, arr, args[0], j, args[1], count)
            vector = builder.load(pointer, align=VECTOR_BYTES)
            vector.set_metadata("invariant.load", builder.module.add_metadata([]))
            items = [builder.extract_element(vector, ir.Constant(_I32, k))
                     for k in range(count)]
            return context.make_tuple(builder, sig.return_type, items)
        return types.UniTuple(arr.dtype, count)(arr, j), codegen

    @intrinsic
    def vstore(typingctx, arr, j, *values):
        count = _lanes_of("vstore", arr, j)
        if len(values) != count or not all(isinstance(v, types.Number) for v in values):
            raise TypingError(f"vstore: expected {count} numbers for {arr.dtype}, "
                              f"got {values}")

        def codegen(context, builder, sig, args):
            pointer = _vector_pointer(context, builder, arr, args[0], j, args[1], count)
            vector = ir.Constant(pointer.type.pointee, ir.Undefined)
            for k, value_type in enumerate(values):   # the star-args arrive as one tuple
                value = context.cast(builder, builder.extract_value(args[2], k), value_type,
                                     arr.dtype)
                vector = builder.insert_element(vector, value, ir.Constant(_I32, k))
            builder.store(vector, pointer, align=VECTOR_BYTES)
            return context.get_dummy_value()
        return types.void(arr, j, types.StarArgTuple.from_types(values)), codegen

    @intrinsic
    def aligned16(typingctx, arr):
        if not isinstance(arr, types.Array):
            raise TypingError(f"aligned16: expected an array, got {arr}")

        def codegen(context, builder, sig, args):
            if arr.layout != "C":
                return ir.Constant(ir.IntType(1), 0)
            data = context.make_array(arr)(context, builder, value=args[0]).data
            low = builder.and_(builder.ptrtoint(data, _I64), ir.Constant(_I64, 15))
            return builder.icmp_unsigned("==", low, ir.Constant(_I64, 0))
        return types.boolean(arr), codegen
