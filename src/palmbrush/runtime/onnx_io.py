"""ONNX <-> Graph, with size, path and sanity checks on load.

Nothing in a model file is trusted: sizes are checked before any allocation, external data
must live inside the model's folder, and every failure is one ModelError line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, TensorProto, helper, numpy_helper

from .errors import ModelError
from .ir import Graph, Node, Value
from .memory import MAX_BYTES, human_bytes
from .ops import MAX_ELEMENTS, MAX_OPSET, MIN_OPSET
from .ops.dtypes import numpy_to_onnx, onnx_to_numpy

MAX_FILE_BYTES = 2**31 - 1  # protobuf cannot hold more; weights beyond go in external data


def load_model(
    source: str | os.PathLike | bytes,
    base_dir: str | os.PathLike | None = None,
    max_bytes: int = MAX_BYTES,
) -> Graph:
    """Parse an ONNX model from a path or bytes into a Graph (external data needs a folder);
    weights over max_bytes in all are refused before any is read."""
    if isinstance(source, bytes | bytearray):
        return graph_from_proto(parse_model(bytes(source)), base_dir, max_bytes)
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelError(f"{path} is {size:,} bytes, over the 2 GiB protobuf limit")
    data = path.read_bytes()
    return graph_from_proto(parse_model(data, str(path)), base_dir or path.parent, max_bytes)


def parse_model(data: bytes, origin: str = "model") -> ModelProto:
    """Bytes -> ModelProto, refusing what is not an ONNX model."""
    if not data:
        raise ModelError(f"{origin} is empty, not an ONNX model")
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and, on some inputs, others
        raise ModelError(f"{origin} is not an ONNX model (protobuf: {exc})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ModelError(f"{origin} is not an ONNX model (no graph, IR version or opset)")
    return model


def _opset(model: ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelError("model imports no ai.onnx opset")
    return versions[0]


def check_opset(version: int, nodes: list[Node]) -> None:
    """Opsets MIN..MAX run as they are; another opset runs only if none of its ops differ.

    An op whose definition at the model's opset is the one it has at the nearest supported
    opset means the same thing, so a Relu from opset 6 is fine. An opset newer than the onnx
    package knows is refused: nothing says what its ops mean.
    """
    if MIN_OPSET <= version <= MAX_OPSET:
        return
    known = onnx.defs.onnx_opset_version()
    if version > known:
        raise ModelError(
            f"model uses opset {version}, newer than any onnx {onnx.__version__} knows "
            f"(up to {known}), so what its ops mean cannot be known"
        )
    nearest = MIN_OPSET if version < MIN_OPSET else MAX_OPSET
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            ours = onnx.defs.get_schema(node.op, nearest).since_version
            theirs = onnx.defs.get_schema(node.op, version).since_version
        except onnx.defs.SchemaError:
            continue  # unknown ops are reported by the op check with the node's name
        if ours != theirs:
            raise ModelError(
                f"model uses opset {version}, where {node.op} differs from opsets "
                f"{MIN_OPSET}-{MAX_OPSET} that palmbrush supports"
                + (" (convert it with onnx.version_converter)" if version < MIN_OPSET else "")
            )


def graph_from_proto(
    model: ModelProto, base_dir: str | os.PathLike | None = None, max_bytes: int = MAX_BYTES
) -> Graph:
    opset = _opset(model)
    g = model.graph
    _check_weight_bytes(g, max_bytes)
    values: dict[str, Value] = {}
    for tensor in g.initializer:
        values[tensor.name] = Value(tensor.name, None, None, tensor_to_array(tensor, base_dir))
        values[tensor.name].dtype = values[tensor.name].const.dtype
        values[tensor.name].shape = tuple(values[tensor.name].const.shape)
    if g.sparse_initializer:
        raise ModelError("sparse initializers are not supported")
    for info in [*g.input, *g.value_info, *g.output]:
        if info.name not in values or values[info.name].const is None:
            values[info.name] = _value_from_info(info)
    inputs = [i.name for i in g.input if values[i.name].const is None]
    nodes = _nodes(g.node)
    check_opset(opset, nodes)
    metadata = {p.key: p.value for p in model.metadata_props}
    graph = Graph(nodes, values, inputs, [o.name for o in g.output], opset, metadata, g.name)
    for node in nodes:
        for name in [*node.inputs, *node.outputs]:
            if name:
                graph.values.setdefault(name, Value(name))
    return graph


def _check_weight_bytes(g, max_bytes: int) -> None:
    """The initializers and constant attributes together must fit in max_bytes."""
    tensors = [*g.initializer, *(a.t for n in g.node for a in n.attribute if a.HasField("t"))]
    total = sum(_declared_bytes(t) for t in tensors)
    if total > max_bytes:
        raise ModelError(
            f"the model's weights take {human_bytes(total)} in {len(tensors)} tensors, "
            f"over the {human_bytes(max_bytes)} bound (max_bytes)"
        )


def _nodes(protos) -> list[Node]:
    nodes, seen = [], set()
    for i, proto in enumerate(protos):
        name = proto.name or f"{proto.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        attrs = {a.name: _attribute(a, name) for a in proto.attribute}
        nodes.append(
            Node(proto.op_type, list(proto.input), list(proto.output), attrs, name, proto.domain)
        )
    return nodes


def _attribute(attr: AttributeProto, node: str):
    if attr.ref_attr_name:
        raise ModelError(f"node '{node}': attribute references are only valid inside functions")
    if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise ModelError(f"node '{node}': subgraph attributes (control flow) are not supported")
    if attr.type == AttributeProto.TENSOR:
        return tensor_to_array(attr.t, None)
    if attr.type == AttributeProto.SPARSE_TENSOR:
        return attr.sparse_tensor
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if attr.type == AttributeProto.STRINGS:
        return [v.decode("utf-8", "replace") for v in value]
    if attr.type in (AttributeProto.INTS, AttributeProto.FLOATS):
        return list(value)
    return value


def _value_from_info(info) -> Value:
    kind = info.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ModelError(f"value '{info.name}' is a {kind or 'untyped value'}; only tensors run")
    tt = info.type.tensor_type
    dtype = onnx_to_numpy(tt.elem_type) if tt.elem_type else None
    if not tt.HasField("shape"):
        return Value(info.name, dtype, None)
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            if d.dim_value < 0:
                raise ModelError(f"value '{info.name}' declares a negative dimension {d.dim_value}")
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return Value(info.name, dtype, tuple(dims))


def _declared_count(tensor: TensorProto) -> int:
    """The element count a tensor's dims declare, refused if negative or over MAX_ELEMENTS."""
    name = tensor.name or "(unnamed tensor)"
    if any(d < 0 for d in tensor.dims):
        raise ModelError(f"tensor '{name}' declares a negative dimension {list(tensor.dims)}")
    count = int(np.prod([float(d) for d in tensor.dims])) if tensor.dims else 1
    if count > MAX_ELEMENTS:
        raise ModelError(f"tensor '{name}' declares {count:.3g} elements, over the limit")
    return count


def _declared_bytes(tensor: TensorProto) -> int:
    if tensor.data_type == TensorProto.STRING:
        return 0  # refused when it is read
    return _declared_count(tensor) * onnx_to_numpy(tensor.data_type).itemsize


def tensor_to_array(tensor: TensorProto, base_dir) -> np.ndarray:
    """A TensorProto's data, after checking its declared size against what it holds."""
    name = tensor.name or "(unnamed tensor)"
    count = _declared_count(tensor)
    if tensor.data_type == TensorProto.STRING:
        raise ModelError(f"tensor '{name}' holds strings, which palmbrush does not run")
    dtype = onnx_to_numpy(tensor.data_type)
    if tensor.data_location == TensorProto.EXTERNAL:
        return _external(tensor, name, dtype, count, base_dir)
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != count * dtype.itemsize:
            raise ModelError(
                f"tensor '{name}' declares {count:,} elements but holds "
                f"{len(tensor.raw_data):,} bytes"
            )
    else:
        field = helper.tensor_dtype_to_field(tensor.data_type)
        held = len(getattr(tensor, field))
        if held != count:
            raise ModelError(f"tensor '{name}' declares {count:,} elements but holds {held:,}")
    return numpy_helper.to_array(tensor)


def _external(tensor: TensorProto, name: str, dtype: np.dtype, count: int, base_dir) -> np.ndarray:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ModelError(
            f"tensor '{name}' keeps its data in '{location}', but the model has no folder"
        )
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if not location or os.path.isabs(location) or os.path.commonpath([root, path]) != root:
        raise ModelError(
            f"tensor '{name}': external data path '{location}' is outside the model folder"
        )
    if not os.path.isfile(path):
        raise ModelError(f"tensor '{name}': external data file '{location}' is missing")
    offset = _external_int(info, "offset", 0, name)
    length = _external_int(info, "length", count * dtype.itemsize, name)
    if length != count * dtype.itemsize:
        raise ModelError(f"tensor '{name}': external data length {length} does not match its shape")
    if offset < 0 or offset + length > os.path.getsize(path):
        raise ModelError(f"tensor '{name}': external data runs past the end of '{location}'")
    data = np.fromfile(path, dtype=dtype.newbyteorder("<"), count=count, offset=offset)
    return data.astype(dtype, copy=False).reshape(tuple(tensor.dims))


def _external_int(info: dict[str, str], key: str, default: int, name: str) -> int:
    text = info.get(key)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ModelError(f"tensor '{name}': external data {key} '{text}' is not a byte count")
    return int(text)


def to_proto(graph: Graph) -> ModelProto:
    """Graph -> ModelProto (initializers inline)."""
    inits = [
        numpy_helper.from_array(v.const, n) for n, v in graph.values.items() if v.const is not None
    ]
    nodes = [
        helper.make_node(
            n.op,
            n.inputs,
            n.outputs,
            n.name,
            domain=n.domain or None,
            **{k: _attr_value(v) for k, v in n.attrs.items()},
        )
        for n in graph.nodes
    ]
    g = helper.make_graph(
        nodes,
        graph.name,
        [_info(graph.values[i]) for i in graph.inputs],
        [_info(graph.values[o]) for o in graph.outputs],
        inits,
    )
    opsets = [helper.make_opsetid("", graph.opset)]
    if any(n.domain == "palmbrush" for n in graph.nodes):  # fused ops made by the graph passes
        opsets.append(helper.make_opsetid("palmbrush", 1))
    model = helper.make_model(g, opset_imports=opsets)
    helper.set_model_props(model, dict(graph.metadata))
    return model


def save_model(graph: Graph, path: str | os.PathLike) -> None:
    onnx.save_model(to_proto(graph), os.fspath(path))


def _attr_value(value):
    return numpy_helper.from_array(value) if isinstance(value, np.ndarray) else value


def _info(value: Value):
    elem = numpy_to_onnx(value.dtype) if value.dtype is not None else TensorProto.UNDEFINED
    shape = None if value.shape is None else [d if d is not None else "?" for d in value.shape]
    return helper.make_tensor_value_info(value.name, elem, shape)
