"""key_probe: per layer, how much a memory depends on a pass key's digits, on a tiny model whose answer is known."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.dirname(__file__))
from key_probe import find, key_sensitivity, needle  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from tasks import TaskSampler  # noqa: E402
from test_tasks import L, TOKENIZER, pool, stdlib_dir  # noqa: E402,F401  (fixtures shared with the sampler tests)


def test_only_memories_that_write_depend_on_the_digits(pool):  # noqa: F811
    torch.manual_seed(0)
    cfg = Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=L, mem_tokens=4, d_mem=8, dpfp_nu=1,
                 layers={'0': {'write_rows': 'all', 'key_map': 'l2', 'seq_delta': True, 'd_mem': 32}})
    model = CtxModel(cfg).eval()     # a fresh model writes zero values: no memory depends on anything
    sampler = TaskSampler(pool, TOKENIZER, L, 1, split='heldout')
    assert key_sensitivity(model, sampler, 2) == [0.0, 0.0]
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.5)
    every_row, tokens = key_sensitivity(model, sampler, 2)
    assert 0 < every_row < 1 and 0 < tokens
    model.use_memories((0,))
    assert key_sensitivity(model, sampler, 2)[0] == 0.0


def test_the_needle_is_found_where_the_sampler_put_it(pool):  # noqa: F811
    s = TaskSampler(pool, TOKENIZER, L, 3, split='heldout')
    sample = s.sample(1, 'passkey', depth='middle')
    at = find(sample.segments[0], needle(s.tok, sample.meta['key']))
    assert at > 0 and find([1, 2, 3], [2, 3]) == 1 and find([1, 2], [3]) == -1
