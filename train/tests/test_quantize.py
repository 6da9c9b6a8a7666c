import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from quantize import quantize  # noqa: E402
from test_model import TINY, export_config  # noqa: E402


def test_quantize_turns_large_weight_matmuls_into_int8_ones(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'tiny'})
    model = onnx.load(str(out / 'fold.onnx'))
    before = sum(n.op_type == 'MatMul' for n in model.graph.node)
    n = quantize(model, min_size=1024)
    ops = [n.op_type for n in model.graph.node]
    assert n > 0 and ops.count('DynamicQuantizeMatMul') == n and ops.count('MatMul') == before - n
    assert any(o.domain == 'com.microsoft' for o in model.opset_import)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q = next(n for n in model.graph.node if n.op_type == 'DynamicQuantizeMatMul')
    w, scale = inits[q.input[1]], inits[q.input[2]]
    assert w.dtype == np.int8 and np.abs(w).max() == 127 and scale.shape == (w.shape[1],)   # one scale a column


def test_quantize_leaves_a_graph_without_large_weights_alone(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'tiny'})
    model = onnx.load(str(out / 'fold.onnx'))
    assert quantize(model, min_size=10 ** 9) == 0
    assert not any(o.domain == 'com.microsoft' for o in model.opset_import)
