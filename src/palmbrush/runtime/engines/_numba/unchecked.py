"""An unchecked load for generated kernels: `at(a, index, offset)` is a[index + offset] on a
C-contiguous 1-D array, as two in-bounds address steps from one base. Numba's own a[i + c]
adds the offsets in unsigned or wrap-checked arithmetic, so LLVM cannot prove that
a[i], a[i + 1], ... are neighbours and loads them one at a time; from a common base with
constant offsets the SLP vectorizer makes one vector load of them. Nothing is bounds-checked
(as no Numba index is without boundscheck): the callers own the ranges."""

from __future__ import annotations

from numba.core import types
from numba.extending import intrinsic


@intrinsic
def at(typingctx, array, index, offset):
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    if not (isinstance(index, types.Integer) and isinstance(offset, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        step = context.cast(builder, args[2], signature.args[2], types.intp)
        first = builder.gep(data, [index], inbounds=True)
        return builder.load(builder.gep(first, [step], inbounds=True))

    return array.dtype(array, index, offset), codegen
