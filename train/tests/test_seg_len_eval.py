"""seg_len_eval.py: a trained model asked at segment lengths other than its config's."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.dirname(__file__))
from model import Config, CtxModel  # noqa: E402
from seg_len_eval import exact_at  # noqa: E402
from test_tasks import L, pool, stdlib_dir  # noqa: E402,F401  (fixtures shared with the sampler tests)


def test_exact_at_draws_streams_at_the_asked_length_and_restores_the_config(pool, monkeypatch):  # noqa: F811
    import seg_len_eval
    torch.manual_seed(0)
    model = CtxModel(Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=L, mem_tokens=4, d_mem=8, dpfp_nu=1)).eval()
    seen = []

    def spy(model, pool, args, cfg, nseg, family, use_memory=True, dev='cuda'):
        seen.append((cfg.seg_len, family, tuple(b.has_memory for b in model.blocks)))
        return real(model, pool, args, cfg, nseg, family, use_memory, dev)
    real = seg_len_eval.evaluate
    monkeypatch.setattr(seg_len_eval, 'evaluate', spy)
    r = exact_at(model, pool, 64, nseg=2, n=2, off=(0,))
    assert seen == [(64, 'passkey', (True, True)), (64, 'passkey', (False, True)), (64, 'where_defined', (True, True))]
    assert set(r) == {'seg_len', 'passkey', 'passkey_off', 'where_defined'} and r['seg_len'] == 64
    assert all(0.0 <= r[k] <= 1.0 for k in ('passkey', 'passkey_off', 'where_defined'))
    assert model.cfg.seg_len == L
    assert 'passkey_off' not in exact_at(model, pool, 32, nseg=2, n=2)
