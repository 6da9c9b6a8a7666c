import json
import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from export import every_row_layers, two_way  # noqa: E402
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
        assert every_row_layers(model) == [1] and 0 < keep.sum() < keep.numel()
        state = torch.randn(1, model.cfg.state_size) * keep
        tokens = torch.randint(0, TINY['vocab_size'], (1, TINY['seg_len']))
        with model.memories_off(every_row_layers(model)):
            alone = model.fold(tokens, state)
        emptied = model.fold(tokens, state) * keep
        assert torch.allclose(alone, emptied, atol=1e-6)
        assert not torch.allclose(model.fold(tokens, state), emptied, atol=1e-6)   # the every-row memory does write
