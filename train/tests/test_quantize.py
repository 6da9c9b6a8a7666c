import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from quantize import FLOAT_ONLY, QMAX, emulated, quantize  # noqa: E402
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
    assert w.dtype == np.int8 and np.abs(w).max() == QMAX and scale.shape == (w.shape[1],)   # one scale a column
    used = {i for n in model.graph.node for i in n.input}
    assert all(i.name in used for i in model.graph.initializer), 'the replaced float weights are dropped'
    assert not any(f'/{m}/' in n.name for n in model.graph.node if n.op_type == 'DynamicQuantizeMatMul' for m in FLOAT_ONLY)


def test_quantize_leaves_a_graph_without_large_weights_alone(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'tiny'})
    model = onnx.load(str(out / 'fold.onnx'))
    assert quantize(model, min_size=10 ** 9) == 0
    assert not any(o.domain == 'com.microsoft' for o in model.opset_import)


def test_emulated_patches_the_linear_layers_quantize_rewrites_and_restores_them(tmp_path):
    """The PyTorch side of an int8 fold (golden.json): the same modules as the graph's DynamicQuantizeMatMul nodes
    (named after them by the exporter), each computing in 7 bits; outside the block the model is float again."""
    import torch
    from model import Config, CtxModel
    cfg = {**TINY, 'name': 'tiny', 'write_rows': 'all', 'key_map': 'l2', 'seq_delta': True, 'doc_value': True}
    graph = onnx.load(str(export_config(tmp_path, cfg) / 'fold.onnx'))
    quantize(graph, min_size=256)
    # '/blocks.0/mlp/mlp.0/MatMul_int8' -> '0', as module 'blocks.0.mlp.0' -> '0'
    kinds = {n.name.split('/')[-2].split('.')[-1] for n in graph.graph.node if n.op_type == 'DynamicQuantizeMatMul'}
    torch.manual_seed(0)
    model = CtxModel(Config(**{k: v for k, v in cfg.items() if k != 'name'})).eval()
    with torch.no_grad():
        for p in model.parameters():   # trained-like: the fresh model's memories write zeros
            p.normal_(0, 0.3)
    tok = torch.randint(8, 64, (1, 16))
    with torch.no_grad():
        plain = model.fold(tok, model.empty_state())
        with emulated(model, min_size=256) as calls:
            int8 = model.fold(tok, model.empty_state())
        again = model.fold(tok, model.empty_state())
    patched = {n.split('.')[-1] for n, m in model.named_modules() if any(m is c for c in calls)}
    assert patched == kinds and not patched & set(FLOAT_ONLY)
    assert not torch.equal(int8, plain) and torch.equal(again, plain)
    assert (int8 - plain).norm() < 0.2 * plain.norm()
