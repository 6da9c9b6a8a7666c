import json
import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from export import two_way  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from test_model import HYBRID_LAYER, TINY, export_config  # noqa: E402


def layer_size(cfg, i):
    return sum(math.prod(s) for s in cfg.layer_state_shapes(i))


@pytest.mark.parametrize('layer', [0, 1])
def test_two_way_empties_exactly_the_every_row_layers_state(layer):
    cfg = Config(**TINY, layers={str(layer): HYBRID_LAYER})
    start = sum(layer_size(cfg, i) for i in range(layer))
    assert two_way(CtxModel(cfg), 7) == {'after_segments': 7, 'empty': [[start, start + layer_size(cfg, layer)]]}


def test_two_way_needs_both_kinds_of_memory():
    with pytest.raises(SystemExit):
        two_way(CtxModel(Config(**TINY)), 7)                         # memory tokens only
    with pytest.raises(SystemExit):
        two_way(CtxModel(Config(**{**TINY, **HYBRID_LAYER})), 7)     # every row only


def test_two_way_is_written_to_config_and_changes_the_model_id(tmp_path):
    cfg = {'name': 'tiny-hybrid', **TINY, 'layers': {'0': HYBRID_LAYER}}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    a, b = export_config(tmp_path / 'a', cfg), export_config(tmp_path / 'b', cfg, extra=['--two_way_after', '3'])
    plain, two = (json.loads((d / 'config.json').read_text()) for d in (a, b))
    assert 'two_way' not in plain and two['two_way']['after_segments'] == 3
    assert two['model_id'] != plain['model_id']   # a snapshot's second state means nothing to a one-way fold
    assert (b / 'fold_alone.onnx').exists() and not (a / 'fold_alone.onnx').exists()
    import onnx
    onnx.checker.check_model(str(b / 'fold_alone.onnx'))


def test_fold_alone_is_the_fold_with_the_every_row_memories_emptied():
    """What fold_alone.onnx exports (memories_off on the every-row layers) computes exactly what the product's
    two-way fold computed before it had the graph: the plain fold of a state whose every-row memories are empty, those
    memories emptied again after (RUNS.md run 33)."""
    torch.manual_seed(3)
    model = CtxModel(Config(**TINY, layers={'1': HYBRID_LAYER})).eval()
    with torch.no_grad():
        for b in model.blocks:
            b.mv.weight.normal_()
        keep = model.mask_without(every_row=True)
        assert model.memory_layers(every_row=True) == [1] and 0 < keep.sum() < keep.numel()
        state = torch.randn(1, model.cfg.state_size) * keep
        tokens = torch.randint(0, TINY['vocab_size'], (1, TINY['seg_len']))
        with model.memories_off(model.memory_layers(every_row=True)):
            alone = model.fold(tokens, state)
        emptied = model.fold(tokens, state) * keep
        assert torch.allclose(alone, emptied, atol=1e-6)
        assert not torch.allclose(model.fold(tokens, state), emptied, atol=1e-6)   # the every-row memory does write


def test_int8_fold_quantizes_the_fold_graphs_only_and_stores_their_int8_weights_once(tmp_path):
    """--int8_fold: fold.onnx and fold_alone.onnx multiply by 7-bit weights kept in weights.bin (their float ones are
    gone from them), decode.onnx stays float, config.json says so and golden.json's fold is the int8 reference."""
    import numpy as np
    import onnx
    from onnx import TensorProto
    cfg = {'name': 'tiny-hybrid', **TINY, 'layers': {'0': HYBRID_LAYER}}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    a = export_config(tmp_path / 'a', cfg, extra=['--two_way_after', '3'])
    b = export_config(tmp_path / 'b', cfg, extra=['--two_way_after', '3', '--int8_fold', '--int8_min_size', '256'])
    conf = json.loads((b / 'config.json').read_text())
    assert conf['int8_fold'] == {'min_size': 256, 'qmax': 63}
    assert conf['model_id'] != json.loads((a / 'config.json').read_text())['model_id']
    for name, quantized in (('fold.onnx', True), ('fold_alone.onnx', True), ('decode.onnx', False)):
        g = onnx.load(str(b / name), load_external_data=False)
        onnx.checker.check_model(str(b / name))
        assert any(n.op_type == 'DynamicQuantizeMatMul' for n in g.graph.node) == quantized, name
        if quantized:
            int8 = [i for i in g.graph.initializer if i.data_type == TensorProto.INT8 and i.data_location == TensorProto.EXTERNAL]
            assert int8 and all(e.value == 'weights.bin' for i in int8 for e in i.external_data if e.key == 'location')
    assert (b / 'weights.bin').stat().st_size > (a / 'weights.bin').stat().st_size
    ga, gb = (json.loads((d / 'golden.json').read_text()) for d in (a, b))
    assert ga['logits_last'] == gb['logits_last'], 'decoding is float and starts from the fixed decode state'
    assert not np.allclose(ga['state_sample'], gb['state_sample'], rtol=0, atol=1e-7) or not any(ga['state_sample'])
