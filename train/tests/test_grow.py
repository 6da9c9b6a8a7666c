"""grow.py starts a larger model (a layer appended, a layer's memory of another kind) that computes the old one
(less the memories it replaced)."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from grow import changed_layers, grow, same_logits, without_memories  # noqa: E402
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
