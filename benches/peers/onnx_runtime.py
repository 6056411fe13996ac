"""An MLServer custom runtime serving the bundled ONNX model with onnxruntime, the way the
MLServer documentation writes one (its PyPI release has no ONNX runtime of its own): each
input, one per raw feature, decoded by MLServer's own codecs (strings by its string codec,
numbers by its NumPy codec); the response encoded by its NumPy codec.
"""

import numpy as np
import onnxruntime
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(string)": object}


class OnnxChurnModel(MLModel):
    async def load(self) -> bool:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        self._inputs = [(i.name, NUMPY[i.type]) for i in self._session.get_inputs()]
        self._probabilities = self._session.get_outputs()[1].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        sent = {i.name: i for i in payload.inputs}
        feed = {}
        for name, kind in self._inputs:
            codec = StringCodec if kind is object else NumpyCodec
            feed[name] = np.asarray(codec.decode_input(sent[name]), dtype=kind).reshape(-1, 1)
        (probabilities,) = self._session.run([self._probabilities], feed)
        churn = np.asarray([row[1] for row in probabilities], dtype=np.float64)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("predict_proba", np.stack([1 - churn, churn], axis=1))],
        )
