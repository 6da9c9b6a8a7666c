"""write_probe's pieces on a tiny model whose answer is known: with tied l2 keys from the layer's input, a
question row and a stream row under the same qk_conv window of tokens have identical first-layer keys."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from model import Config, CtxModel  # noqa: E402
from stream import SHIPPED_TOKENIZER, Tokenizer, question_prompt  # noqa: E402
from write_probe import ends_with, record  # noqa: E402


@torch.no_grad()
def test_the_probe_finds_the_name_and_its_exact_key_match():
    torch.manual_seed(0)
    cfg = Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=24, mem_tokens=4, d_mem=8,
                 write_rows='all', qk_conv=4, tie_qk=True, key_map='l2', keys_from_input=True)
    model, tok = CtxModel(cfg).eval(), Tokenizer(SHIPPED_TOKENIZER)
    seg = tok.encode('x = 1\nwhere is zorbFrobnic = 2\n')
    seg = seg + [9] * (cfg.seg_len - len(seg))
    seen = record(model)
    state = model.fold(torch.tensor([seg]), model.empty_state())
    seen[0]['query'].clear()
    rows = ends_with(tok, seg, 'zorbFrobnic')
    question = question_prompt(tok, 'where is zorbFrobnic defined?')
    q_rows = ends_with(tok, question, 'zorbFrobnic')
    assert len(rows) == 1 and len(q_rows) == 1
    model.decode(torch.tensor([question]), state)
    (keys,), (gates,), (queries,) = seen[0]['key'], seen[0]['gate'], seen[0]['query']
    assert keys.shape[0] == cfg.seg_len + cfg.mem_tokens and gates.shape == (cfg.seg_len + cfg.mem_tokens,)
    assert queries.shape[0] == len(question)
    sim = keys @ queries[q_rows[0]]
    assert abs(float(sim[rows[0]]) - 1.0) < 1e-5
    assert int((sim > sim[rows[0]] - 1e-6).sum()) == 1, 'no other row matches as well'
