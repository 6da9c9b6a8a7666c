"""grow.py starts a larger model (a layer appended, a layer's memory of another kind) that computes the old one
(less the memories it replaced)."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from grow import changed_layers, grow, same_logits, widened_layers, without_memories  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from test_model import HYBRID_LAYER, TINY  # noqa: E402


def trained_like(cfg):
    torch.manual_seed(3)
    model = CtxModel(cfg)
    with torch.no_grad():
        for p in model.parameters():   # no zeros anywhere: a zero the old model had would hide a missed copy
            p.normal_(0, 0.3)
    return model.state_dict()


@pytest.mark.parametrize('layers', [{'0': HYBRID_LAYER}, {'0': HYBRID_LAYER, '2': HYBRID_LAYER}])
def test_the_grown_model_computes_the_old_one(layers):
    old_cfg = Config(**TINY)
    cfg = Config(**{**TINY, 'n_layers': 3 if '2' in layers else 2}, layers=layers)
    old = trained_like(old_cfg)
    new = grow(old_cfg, old, cfg)
    assert changed_layers(old_cfg, cfg) == {0}
    assert same_logits(old_cfg, without_memories(old, {0}), cfg, new) < 1e-5
    assert same_logits(old_cfg, old, cfg, new) > 1e-2    # layer 0's old memory is gone (what the check above takes out)
    assert torch.equal(new['blocks.1.mv.weight'], old['blocks.1.mv.weight'])      # an unchanged layer is copied
    assert torch.count_nonzero(new['blocks.0.mv.weight']) == 0                      # a changed memory writes zeros
    assert new['blocks.0.mq.weight'].shape != old['blocks.0.mq.weight'].shape       # ... of its own kind


def test_the_new_parts_are_what_training_moves():
    """Not a dead start: a loss on the grown model reaches the appended block's zeroed projections."""
    old_cfg = Config(**TINY)
    cfg = Config(**{**TINY, 'n_layers': 3}, layers={'2': HYBRID_LAYER})
    model = CtxModel(cfg)
    model.load_state_dict(grow(old_cfg, trained_like(old_cfg), cfg))
    segs = torch.randint(5, cfg.vocab_size, (2, 2, cfg.seg_len))
    qa = torch.randint(5, cfg.vocab_size, (2, 6))
    loss = model(segs, qa, qa)[0]
    loss.backward()
    assert model.blocks[2].o.weight.grad.abs().sum() > 0
    assert model.blocks[2].mlp[2].weight.grad.abs().sum() > 0


def test_a_model_of_other_widths_is_refused():
    old_cfg = Config(**TINY)
    with pytest.raises(SystemExit):
        grow(old_cfg, trained_like(old_cfg), Config(**{**TINY, 'd_model': 64}))


def test_an_appended_layer_alone_changes_nothing():
    """Run 18's start: the shipped hybrid with a seventh layer (its memory every-row) computes the hybrid exactly."""
    old_cfg = Config(**TINY, layers={'0': HYBRID_LAYER})
    cfg = Config(**{**TINY, 'n_layers': 3}, layers={'0': HYBRID_LAYER, '2': HYBRID_LAYER})
    old = trained_like(old_cfg)
    new = grow(old_cfg, old, cfg)
    assert changed_layers(old_cfg, cfg) == set()
    assert all(torch.equal(new[k], v) for k, v in old.items())
    assert same_logits(old_cfg, old, cfg, new) < 1e-5


def test_a_memory_with_wider_keys_keeps_what_it_learned():
    """Layer 0's l2 keys twice as wide: with eps 0 the widened model computes the old one, memory included; with
    eps > 0 its new key directions are in use (the logits move, a little)."""
    row = {'key_map': 'l2', 'write_rows': 'all', 'seq_delta': True, 'tie_qk': True, 'keys_from_input': True, 'qk_conv': 4}
    old_cfg = Config(**{**TINY, 'memory_layers': [0]}, layers={'0': row})
    cfg = Config(**{**TINY, 'memory_layers': [0]}, layers={'0': {**row, 'd_mem': 2 * TINY['d_mem']}})
    old = trained_like(old_cfg)
    assert widened_layers(old_cfg, cfg) == {0} and changed_layers(old_cfg, cfg) == set()
    exact = grow(old_cfg, old, cfg, eps=0.0)
    assert same_logits(old_cfg, old, cfg, exact) < 1e-4
    near = grow(old_cfg, old, cfg, eps=0.1)
    assert 1e-6 < same_logits(old_cfg, old, cfg, near) < 0.5
    d = TINY['d_mem']
    assert torch.equal(near['blocks.0.mq.weight'][:d], old['blocks.0.mq.weight'])
    assert torch.equal(near['blocks.0.kconv.w'][:, :d], old['blocks.0.kconv.w'])
    assert near['blocks.0.mq.weight'].shape == (2 * d, TINY['d_model'])
