"""`model.summary()`: Keras's table of layers, output shapes and parameter counts."""
import math


def _count(weights):
    return int(sum(math.prod(tuple(w.shape)) for w in weights))


def _size(count, nbytes=4):
    size = count * nbytes
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024


def _shape_text(layer):
    try:
        shapes = [node.output_shapes for node in layer._inbound_nodes]
    except AttributeError:
        shapes = []
    if not shapes:
        return "?"
    first = shapes[0]
    return str(first[0]) if len(first) == 1 else str(list(first))


def _connections(layer, model_nodes):
    found = []
    for node in layer._inbound_nodes:
        if id(node) not in model_nodes:
            continue
        for tensor in node.input_tensors:
            source, node_index, tensor_index = tensor._keras_history
            found.append(f"{source.name}[{node_index}][{tensor_index}]")
    return found


def _rows(model, expand_nested, prefix=""):
    rows = []
    functional = hasattr(model, "_nodes") and any(len(n.input_tensors) > 1 for n in model._nodes)
    model_nodes = {id(n) for n in getattr(model, "_nodes", ())}
    for layer in model.layers:
        name = f"{prefix}{layer.name} ({type(layer).__name__})"
        params = _count(layer.weights) if layer.built else 0
        params_text = f"{params:,}" if layer.built else "0 (unbuilt)"
        connected = _connections(layer, model_nodes) if functional else None
        rows.append((name, _shape_text(layer), params_text, connected))
        if expand_nested and hasattr(layer, "layers") and layer is not model:
            rows.extend(_rows(layer, expand_nested, prefix=prefix + "  "))
    return rows, functional


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False):
    if not model.built:
        raise ValueError(f"Model '{model.name}' has not yet been built. Build the model first by "
                         "calling `build()` or by calling the model on a batch of data.")
    print_fn = print_fn or print
    rows, functional = _rows(model, expand_nested)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    line_length = line_length or (120 if functional else 90)
    positions = positions or ([0.33, 0.55, 0.67, 1.0] if functional else [0.45, 0.85, 1.0])
    widths = []
    previous = 0
    for p in positions[:len(headers)]:
        stop = int(p * line_length) if p <= 1 else int(p)
        widths.append(max(stop - previous - 3, 8))
        previous = stop

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(values):
        out = []
        for value, width, i in zip(values, widths, range(len(values))):
            value = value[:width]
            out.append(value.rjust(width) if i == 2 else value.ljust(width))
        return "│ " + " │ ".join(out) + " │"

    print_fn(f'Model: "{model.name}"')
    print_fn(line("┏", "┳", "┓", "━"))
    print_fn(cells(headers).replace("│", "┃"))
    print_fn(line("┡", "╇", "┩", "━"))
    for i, (name, shape, params, connected) in enumerate(rows):
        lines = connected or ["-"] if functional else [None]
        for j, conn in enumerate(lines):
            values = [name, shape, params] if j == 0 else ["", "", ""]
            if functional:
                values.append(conn)
            print_fn(cells(values))
        if i < len(rows) - 1:
            print_fn(line("├", "┼", "┤", "─"))
    print_fn(line("└", "┴", "┘", "─"))
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    total = trainable + non_trainable
    print_fn(f" Total params: {total:,} ({_size(total)})")
    print_fn(f" Trainable params: {trainable:,} ({_size(trainable)})")
    print_fn(f" Non-trainable params: {non_trainable:,} ({_size(non_trainable)})")
    if getattr(model, "optimizer", None) is not None and getattr(model.optimizer, "variables", None):
        slots = _count(v for v in model.optimizer.variables if hasattr(v, "shape"))
        if slots:
            print_fn(f" Optimizer params: {slots:,} ({_size(slots)})")

