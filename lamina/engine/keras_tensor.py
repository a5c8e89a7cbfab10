"""Symbolic tensors: what `Input()` returns and what layers called on it return.

A `KerasTensor` has a shape (with `None` for unknown sizes), a dtype name and a history
`(layer, node_index, tensor_index)` telling which layer call produced it.
"""
from lamina import backend


class KerasTensor:
    def __init__(self, shape, dtype="float32", name=None, sparse=False):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = backend.standardize_dtype(dtype)
        self.name = name
        self.sparse = sparse
        self._keras_history = None
        self._keras_mask = None

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self):
        raise TypeError("A symbolic KerasTensor has no length; use `x.shape[0]` instead.")

    def __iter__(self):
        raise TypeError("A symbolic KerasTensor cannot be iterated over.")

    def __bool__(self):
        raise TypeError("A symbolic KerasTensor cannot be used as a Python boolean.")

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    # Arithmetic records a Keras operation node, as `x + y` does in a Keras 3 functional model.
    def _operation(self, name, *args):
        from lamina.layers.operations import Operation
        return Operation(name)(*args)

    def __add__(self, other):
        return self._operation("Add", self, other)

    def __radd__(self, other):
        return self._operation("Add", other, self)

    def __sub__(self, other):
        return self._operation("Subtract", self, other)

    def __rsub__(self, other):
        return self._operation("Subtract", other, self)

    def __mul__(self, other):
        return self._operation("Multiply", self, other)

    def __rmul__(self, other):
        return self._operation("Multiply", other, self)

    def __truediv__(self, other):
        return self._operation("TrueDivide", self, other)

    def __rtruediv__(self, other):
        return self._operation("TrueDivide", other, self)

    def __matmul__(self, other):
        return self._operation("Matmul", self, other)

    def __rmatmul__(self, other):
        return self._operation("Matmul", other, self)

    def __pow__(self, other):
        return self._operation("Power", self, other)

    def __neg__(self):
        return self._operation("Negative", self)

    def __abs__(self):
        return self._operation("Absolute", self)


def is_keras_tensor(x):
    return isinstance(x, KerasTensor)


def flatten(structure):
    """Leaves of a nested list/tuple/dict structure, in order (dicts by sorted key)."""
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def pack_like(structure, leaves):
    """Rebuild `structure` with `leaves` (the inverse of `flatten`)."""
    return _pack(structure, iter(leaves))


def _pack(structure, leaves):
    # A module-level function, not a recursive closure: a closure that refers to itself is a
    # reference cycle, which would keep `leaves` (a layer's input tensors) alive until the
    # garbage collector runs instead of freeing each after its last use.
    if isinstance(structure, dict):
        return {key: _pack(structure[key], leaves) for key in sorted(structure)}
    if isinstance(structure, list):
        return type(structure)(_pack(item, leaves) for item in structure)
    if isinstance(structure, tuple):
        return tuple(_pack(item, leaves) for item in structure)
    return next(leaves)


def map_structure(fn, structure):
    return pack_like(structure, [fn(x) for x in flatten(structure)])


def any_symbolic(structure):
    if isinstance(structure, KerasTensor):
        return True
    if isinstance(structure, (list, tuple)):
        return any(any_symbolic(x) for x in structure)
    if isinstance(structure, dict):
        return any(any_symbolic(x) for x in structure.values())
    return False
