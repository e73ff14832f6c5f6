"""An onnx.backend implementation, so ONNX's own conformance suite can drive palmbrush."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import ModelProto
from onnx.backend.base import Backend, BackendRep

from .executor import Predictor
from .onnx_io import graph_from_proto


class PalmbrushRep(BackendRep):
    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        names = self.predictor.graph.inputs
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            arrays = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
            feeds = dict(zip(names, arrays))
        outputs = self.predictor.run(feeds)
        return tuple(outputs[name] for name in self.predictor.graph.outputs)


class PalmbrushBackend(Backend):
    engines: Any = None  # engine preference used by prepare(); None means best available

    @classmethod
    def prepare(cls, model: ModelProto, device: str = "CPU", **kwargs: Any) -> PalmbrushRep:
        super().prepare(model, device, **kwargs)
        return PalmbrushRep(Predictor(graph_from_proto(model), engines=cls.engines))

    @classmethod
    def run_model(cls, model: ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"
