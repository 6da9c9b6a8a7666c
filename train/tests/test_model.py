"""Unit tests of the reference model and its export (CPU, small shapes: seconds on Debian's torch 1.13)."""
import json
import os
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from model import Config, CtxModel  # noqa: E402

TINY = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8, dpfp_nu=3)


def export_config(tmp_path, cfg, ckpt=None, extra=()):
    """Runs export.py on config dict cfg (saved as NAME.json) with the weights of checkpoint ckpt (None: untrained)
    and the export.py flags extra; returns the exported folder."""
    cfg_path = tmp_path / f"{cfg['name']}.json"
    cfg_path.write_text(json.dumps(cfg))
    tok = os.path.join(os.path.dirname(__file__), '..', '..', 'models', 'ctx-small', 'tokenizer.model')
    out = tmp_path / 'm'
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), '..', 'export.py'), '--config', str(cfg_path),
                        '--out', str(out), '--tokenizer', tok, *extra] + (['--ckpt', str(ckpt)] if ckpt else []),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(params=['armt', 'infini', 'armt-all', 'armt-all-l2'])
def model(request):
    torch.manual_seed(0)
    parts = request.param.split('-')
    memory, rows, key_map = parts[0], parts[1] if len(parts) > 1 else 'mem', parts[2] if len(parts) > 2 else 'dpfp'
    return CtxModel(Config(**TINY, memory=memory, write_rows=rows, key_map=key_map, qk_conv=4 if key_map == 'l2' else 0)).eval()


def test_state_size_is_layers_x_dkey_x_dmodel_plus_one():
    cfg = Config(**TINY)
    assert cfg.d_key == 2 * 3 * 8
    assert cfg.state_size == 2 * cfg.d_key * (32 + 1)


def test_pack_unpack_round_trip(model):
    s = torch.randn(3, model.cfg.state_size)
    assert torch.equal(model.pack(model.unpack(s)), s)


@torch.no_grad()
def test_kv_cache_decoding_equals_full_decoding(model):
    state = torch.randn(1, model.cfg.state_size).abs() * 0.1
    toks = torch.randint(0, 64, (1, 9))
    full, _ = model.decode(toks, state)
    part, cache = model.decode(toks[:, :5], state)
    rest, _ = model.decode(toks[:, 5:], state, cache, offset=5)
    assert torch.allclose(torch.cat([part, rest], 1), full, atol=1e-5)


@torch.no_grad()
def test_fold_writes_and_decode_reads_memory(model):
    if model.cfg.memory == 'armt':   # mv starts at zero (ARMT init): give it weights so writes are visible
        for b in model.blocks:
            torch.nn.init.normal_(b.mv.weight, std=0.1)
    state = model.empty_state()
    new = model.fold(torch.randint(0, 64, (1, 16)), state)
    assert new.abs().sum() > 0, 'folding a segment must write the memory'
    q = torch.randint(0, 64, (1, 6))
    a, _ = model.decode(q, new)
    b, _ = model.decode(q, state)
    assert not torch.allclose(a, b), 'decoding must read the memory'


def test_answer_gradient_reaches_the_first_segment(model):
    """The answer loss must be able to teach what to store: gradients flow back through the memory."""
    if model.cfg.memory == 'armt':
        for b in model.blocks:
            torch.nn.init.normal_(b.mv.weight, std=0.1)
    model.train()
    segs = torch.randint(0, 64, (2, 3, 16))
    qa = torch.randint(0, 64, (2, 8))
    y = torch.full((2, 8), -100)
    y[:, 4:7] = qa[:, 5:8]
    emb_out = {}
    h = model.emb.register_forward_hook(lambda m, i, o: emb_out.setdefault('first', o) if 'first' not in emb_out else None)
    loss, _, _, _ = model(segs, qa, y, lm=False)
    h.remove()
    first = emb_out['first']
    g, = torch.autograd.grad(loss, first)
    assert g.abs().sum() > 0


def test_memory_off_training_step_runs(model):
    model.train()
    segs = torch.randint(0, 64, (2, 2, 16))
    qa = torch.randint(0, 64, (2, 8))
    y = torch.full((2, 8), -100)
    y[:, 3] = 5
    loss, lm, ans, exact = model(segs, qa, y, use_memory=False)
    loss.backward()
    assert torch.isfinite(loss) and 0 <= exact <= 1


def test_export_writes_graphs_weights_config_and_golden(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'tiny'})
    for f in ('fold.onnx', 'decode.onnx', 'weights.bin', 'config.json', 'golden.json', 'tokenizer.model'):
        assert (out / f).exists(), f
    meta = json.loads((out / 'config.json').read_text())
    assert meta['state_size'] == Config(**TINY).state_size and len(meta['model_id']) == 32
    import onnx
    for g in ('fold.onnx', 'decode.onnx'):
        onnx.checker.check_model(str(out / g))
    golden = json.loads((out / 'golden.json').read_text())
    assert golden['stream_segment_lengths'] == [16, 16, 5]


def test_qk_conv_decoding_with_a_cache_equals_decoding_at_once():
    torch.manual_seed(2)
    model = CtxModel(Config(**{**TINY, 'write_rows': 'all', 'qk_conv': 4})).eval()
    with torch.no_grad():
        for b in model.blocks:
            b.mv.weight.normal_()
        state = model.fold(torch.randint(0, TINY['vocab_size'], (1, TINY['seg_len'])), model.empty_state())
        q = torch.randint(0, TINY['vocab_size'], (1, 9))
        whole, _ = model.decode(q, state)
        first, cache = model.decode(q[:, :2], state)
        steps = [first]
        for t in range(2, 9):       # one token at a time: the convolution needs the query rows before it
            lg, cache = model.decode(q[:, t:t + 1], state, cache, offset=t)
            steps.append(lg)
        assert all(c[2].shape == (1, 3, TINY['d_mem']) for c in cache)
        assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)


def test_export_of_a_qk_conv_model_carries_the_query_rows(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'conv', 'write_rows': 'all', 'qk_conv': 4})
    import onnx
    g = onnx.load(str(out / 'decode.onnx'))
    assert [i.name for i in g.graph.input][-1] == 'past_q' and [o.name for o in g.graph.output][-1] == 'present_q'
    assert json.loads((out / 'config.json').read_text())['qk_conv'] == 4


def test_load_checkpoint_reads_whole_split_and_gzipped_weights(tmp_path):
    import gzip
    import io
    from export import load_checkpoint
    torch.manual_seed(1)
    sd = {k: v.half() for k, v in CtxModel(Config(**TINY)).state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    data = buf.getvalue()
    (tmp_path / 'whole.pt').write_bytes(data)
    (tmp_path / 'split.pt.00').write_bytes(data[:1000])
    (tmp_path / 'split.pt.01').write_bytes(data[1000:])
    (tmp_path / 'packed.pt.gz').write_bytes(gzip.compress(data))
    for path in ('whole.pt', 'split.pt', 'packed.pt'):
        got = load_checkpoint(str(tmp_path / path))
        assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k].float()) for k in sd)


def test_tied_keys_share_the_query_projection():
    cfg = Config(vocab_size=64, d_model=32, n_layers=1, n_heads=2, seg_len=8, mem_tokens=2, d_mem=8, write_rows='all', tie_qk=True)
    blk = CtxModel(cfg).blocks[0]
    assert blk.mk is blk.mq


def test_qk_conv_mixes_earlier_rows_from_the_start_and_is_causal():
    torch.manual_seed(0)
    base = Config(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=8, mem_tokens=2, d_mem=8)
    plain, conv = CtxModel(base), CtxModel(Config(**{**base.__dict__, 'qk_conv': 3}))
    conv.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        for b in (plain.blocks[0], conv.blocks[0]):
            b.mv.weight.normal_()   # a memory that stores something, so that its keys matter
    tok = torch.randint(0, 64, (2, 8))
    s0 = plain.fold(tok, plain.empty_state(2))
    assert not torch.allclose(conv.fold(tok, conv.empty_state(2)), s0, atol=1e-4), 'keys see earlier rows at start'
    sc = conv.blocks[0].qconv
    with torch.no_grad():
        sc.w.normal_()
    h = torch.randn(1, 6, 8)
    later = h.clone()
    later[:, 4:] += 1.0
    assert torch.allclose(sc(h)[:, :4], sc(later)[:, :4]) and not torch.allclose(sc(h)[:, 4:], sc(later)[:, 4:])


def test_document_heads_follow_the_last_header_causally():
    """doc_value: a row's header is the mean embedding of its own document's header rows, up to the header's
    first newline; nothing of a later header or of another document's header leaks in."""
    cfg = Config(**TINY, write_rows='all', doc_value=True, nl_id=18)
    model = CtxModel(cfg)
    toks = torch.tensor([[9, 10, 3, 20, 21, 18, 30, 18, 31, 4, 22, 18, 32]])
    emb = torch.randn(1, toks.shape[1], 32)
    head = model.document_heads(toks, emb)
    assert torch.equal(head[0, :2], torch.zeros(2, 32)), 'rows before any header have none'
    first = emb[0, 2:6].mean(0)                    # <doc> 20 21 \n
    for t in (5, 6, 7, 8):
        assert torch.allclose(head[0, t], first, atol=1e-6)
    assert torch.allclose(head[0, 3], emb[0, 2:4].mean(0), atol=1e-6), 'a header row sees only its header so far'
    second = emb[0, 9:12].mean(0)                  # <cont> 22 \n
    assert torch.allclose(head[0, 12], second, atol=1e-6)


def test_doc_value_writes_the_header_into_the_memory():
    """With doc_value the header projection (zero at the start, as mv) takes part in the write and gets gradient."""
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, write_rows='all', qk_conv=4, doc_value=True, nl_id=18))
    segs = torch.tensor([[[3, 20, 21, 18] + list(range(30, 42))]])
    qa = torch.randint(0, 64, (1, 8))
    y = torch.full((1, 8), -100)
    y[:, 4:7] = qa[:, 5:8]
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.1)
    loss, _, _, _ = model(segs, qa, y, lm=False)
    loss.backward()
    assert all(b.mh.weight.grad.abs().sum() > 0 for b in model.blocks)
    with torch.no_grad():
        for b in model.blocks:
            torch.nn.init.normal_(b.mh.weight, std=0.1)
        with_head = model.fold(segs[:, 0], model.empty_state())
        for b in model.blocks:
            torch.nn.init.zeros_(b.mh.weight)
        assert not torch.allclose(with_head, model.fold(segs[:, 0], model.empty_state()))


@torch.no_grad()
def test_l2_keys_store_and_recall_and_stay_bounded():
    """key_map l2: a key written alone is recalled at full strength (the plain delta rule); a segment of many
    open gates is scaled so that folding it again and again does not blow the memory up."""
    torch.manual_seed(0)
    blk = CtxModel(Config(**TINY, write_rows='all', key_map='l2')).blocks[0]
    torch.nn.init.normal_(blk.mv.weight, std=0.3)
    torch.nn.init.constant_(blk.mb.bias, 20.0)                  # gates open
    M, z = torch.zeros(1, 8, 32), torch.zeros(1, 8)
    t = torch.randn(1, 1, 32)
    M1, _ = blk.armt_write(t, M, z)
    key = torch.nn.functional.normalize(blk.mk(t), dim=-1)
    assert torch.allclose(key @ M1, blk.mv(t), atol=1e-4)
    many = torch.randn(1, 64, 32) * 3
    for _ in range(50):
        M, z = blk.armt_write(many, M, z)
    assert torch.isfinite(M).all() and M.abs().max() < 1e3


@torch.no_grad()
def test_keys_from_input_match_the_query_of_the_same_tokens():
    """keys_from_input + tie_qk: in the first layer a row's write key is exactly the query a later row with the same
    qk_conv window of tokens reads with, whatever came before (with output keys, context changes it)."""
    torch.manual_seed(0)
    cfg = Config(**TINY, write_rows='all', qk_conv=4, tie_qk=True, key_map='l2', keys_from_input=True)
    model = CtxModel(cfg)
    blk, keys = model.blocks[0], {}
    orig = blk.armt_write
    blk.armt_write = lambda t, M, z, head=None, x_in=None: keys.setdefault('k', blk.key(x_in)) is None or orig(t, M, z, head, x_in)
    name = [40, 41, 42, 43]
    model.fold(torch.tensor([[9, 10, 11, *name, 12, 13, 14, 15, 16, 17, 18, 19, 20]]), model.empty_state())
    x = model.emb(torch.tensor([[30, 31, *name]]))
    h = blk.qconv(torch.cat([x.new_zeros(1, 3, cfg.d_mem), blk.mq(x)], 1))[:, 3:]
    q = torch.nn.functional.normalize(h, dim=-1)
    assert torch.allclose(keys['k'][0, 6], q[0, -1], atol=1e-5)


@torch.no_grad()
def test_gate_from_input_depends_on_the_rows_tokens_only_in_the_first_layer():
    """gate_from_input: in the first layer (empty memory) a row's write gate is a function of its own token,
    whatever came before it; gated by the output, context changes it."""
    torch.manual_seed(0)
    for from_input in (True, False):
        model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', gate_from_input=from_input))
        torch.nn.init.normal_(model.blocks[0].mb.weight, std=0.5)
        gates, blk = [], model.blocks[0]
        orig = blk.gate
        blk.gate = lambda rows: gates.append(orig(rows)) or gates[-1]
        model.fold(torch.tensor([[9, 10, 11, 40, 12, 13, 14, 15]]), model.empty_state())
        model.fold(torch.tensor([[20, 21, 40, 22, 23, 24, 25, 26]]), model.empty_state())
        same = torch.allclose(gates[0][0, 3], gates[1][0, 2], atol=1e-6)
        assert same == from_input


@torch.no_grad()
def test_open_gates_write_every_row_at_full_strength():
    """open_gates (train.py --gate_open_steps): shut gates write nothing, held open they write what gates of 1 would;
    reset_gates restarts them open."""
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, write_rows='all', key_map='l2'))
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.3)
    seg = torch.tensor([[9, 10, 11, 40, 12, 13, 14, 15]])
    model.reset_gates(-40.0)
    shut = model.fold(seg, model.empty_state())
    assert shut.abs().max() < 1e-6
    model.open_gates(True)
    held_open = model.fold(seg, model.empty_state())
    model.open_gates(False)
    model.reset_gates(40.0)
    assert torch.allclose(held_open, model.fold(seg, model.empty_state()), atol=1e-5)
    assert held_open.abs().max() > 1e-3


def test_seq_delta_is_the_delta_rule_row_by_row():
    """seq_delta equals the delta rule applied one row at a time (any length up to rows_max, shut gates included,
    blocks of 16 rows alone or merged into chunks of 32 and 64) and stays bounded when the same rows are written
    again and again."""
    from model import seq_delta
    torch.manual_seed(0)
    for T, chunk in ((1, 64), (16, 16), (37, 32), (37, 64), (150, 64)):
        key = torch.nn.functional.normalize(torch.randn(2, T, 8) + 2.0, dim=-1)   # overlapping keys
        val, beta = torch.randn(2, T, 5), torch.rand(2, T, 1)
        beta[:, ::3] = 0.0
        M0 = torch.randn(2, 8, 5)
        want = M0.clone()
        for i in range(T):
            k, v = key[:, i:i + 1], val[:, i:i + 1]
            want = want + k.transpose(-1, -2) @ (beta[:, i:i + 1] * (v - k @ want))
        assert torch.allclose(seq_delta(M0, key, val, beta, rows_max=160, chunk=chunk), want, atol=1e-4)
    M = torch.zeros(2, 8, 5)
    for _ in range(50):
        M = seq_delta(M, key, val * 3, torch.ones_like(beta), rows_max=40)
    assert torch.isfinite(M).all() and M.abs().max() < 100


def test_seq_delta_stays_float32_under_autocast():
    """Training runs under bfloat16 autocast; seq_delta must give its float32 result there (session 20)."""
    from model import seq_delta
    torch.manual_seed(1)
    key = torch.nn.functional.normalize(torch.randn(2, 150, 32) + 1.0, dim=-1)
    val, beta, M0 = torch.randn(2, 150, 16), torch.rand(2, 150, 1), torch.randn(2, 32, 16)
    want = seq_delta(M0, key, val, beta, rows_max=160)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = seq_delta(M0, key, val, beta, rows_max=160)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)


@torch.no_grad()
def test_value_norm_keeps_a_long_fold_bounded():
    """value_norm: with weights that make the memory feed on itself (large value and query projections), the state
    of a seq_delta model grows without end over many segments; written from layer-normed rows it levels off."""
    def norms(value_norm):
        torch.manual_seed(0)
        model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', seq_delta=True, keys_from_input=True,
                                tie_qk=True, value_norm=value_norm))
        for b in model.blocks:
            torch.nn.init.normal_(b.mv.weight, std=1.0)
            torch.nn.init.constant_(b.mb.bias, 5.0)
        state, out = model.empty_state(), []
        gen = torch.Generator().manual_seed(1)
        for _ in range(60):
            state = model.fold(torch.randint(8, 64, (1, 16), generator=gen), state)
            out.append(float(state.norm()))
        return out
    grown = norms(False)
    assert not (torch.tensor(grown[-1]).isfinite() and grown[-1] < 10 * grown[19])   # the test can see growth
    bounded = norms(True)
    assert bounded[-1] < 2 * bounded[19]


def test_state_norms_reports_each_layer_at_powers_of_two():
    from state_norm import state_norms
    model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', seq_delta=True))
    got = list(state_norms(model.eval(), list(range(8, 60)) * 3, 5))
    assert [n for n, _ in got] == [1, 2, 4, 5]
    assert all(len(norms) == TINY['n_layers'] for _, norms in got)


def test_memory_layers_leave_the_other_layers_without_memory(tmp_path):
    """memory_layers [0]: layer 1 neither writes (its part of the state stays zero) nor reads (a state with garbage
    in layer 1 decodes as the one without); layer 0 still writes, and the model exports with its decoding cache."""
    kw = dict(**TINY, write_rows='all', key_map='l2', qk_conv=4, seq_delta=True, tie_qk=True, keys_from_input=True)
    torch.manual_seed(0)
    model = CtxModel(Config(**kw, memory_layers=[0])).eval()
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.5)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        state = model.fold(torch.randint(8, 64, (1, 16), generator=gen), model.empty_state())
        (m0, _), (m1, z1) = model.unpack(state)
        assert m0.abs().sum() > 0 and m1.abs().sum() == 0 and z1.abs().sum() == 0
        q = torch.randint(8, 64, (1, 6), generator=gen)
        noisy = state.clone()
        model.unpack(noisy)[1][0].normal_()
        assert torch.equal(model.decode(q, state)[0], model.decode(q, noisy)[0])
        model.unpack(noisy)[0][0].normal_()
        assert not torch.equal(model.decode(q, state)[0], model.decode(q, noisy)[0])
        _, cache = model.decode(q, state)
        assert all(c[2].shape == (1, 3, TINY['d_mem']) for c in cache)
    out = export_config(tmp_path, {**kw, 'name': 'm0', 'memory_layers': [0]})
    assert json.loads((out / 'config.json').read_text())['memory_layers'] == [0]


def test_mem_decay_scales_a_layers_memory_once_per_segment():
    """mem_decay [1, 0.5]: with the write gates shut, a folded segment leaves layer 0's memory as it was and halves
    layer 1's."""
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', seq_delta=True, mem_decay=[1.0, 0.5])).eval()
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.5)
    tok = torch.randint(8, 64, (1, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        state = model.fold(tok, model.empty_state())
        for b in model.blocks:
            torch.nn.init.constant_(b.mb.bias, -50.0)    # sigmoid(-50): nothing more is written
            torch.nn.init.zeros_(b.mb.weight)
        (a0, _), (a1, _) = model.unpack(state)
        (b0, _), (b1, _) = model.unpack(model.fold(tok, state))
    assert a1.abs().sum() > 0
    assert torch.allclose(b0, a0, atol=1e-6) and torch.allclose(b1, 0.5 * a1, atol=1e-6)


def test_gate_means_collect_each_memory_layers_write_gates_with_gradients():
    """log_gates: two folds with memory in layer 0 only give one mean gate (layer 0's), through which a cost reaches
    layer 0's gate weights and not layer 1's; log_gates(False) stops collecting."""
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', seq_delta=True, memory_layers=[0]))
    gen = torch.Generator().manual_seed(1)
    tok = [torch.randint(8, 64, (2, 16), generator=gen) for _ in range(2)]
    model.log_gates(True)
    state = model.fold(tok[1], model.fold(tok[0], model.empty_state(2)))
    g = model.gate_means()
    assert list(g) == [0] and 0 < float(g[0]) < 1
    g[0].backward()
    assert model.blocks[0].mb.weight.grad.abs().sum() > 0 and model.blocks[1].mb.weight.grad is None
    model.log_gates(False)
    model.fold(tok[0], state.detach())
    assert all(b.gate_log is None for b in model.blocks)


# A hybrid (run 17): layer 0 an every-row delta-rule memory (names) with its own width, short convolution and
# document values, layer 1 ARMT's DPFP memory written by the memory tokens (pass keys).
HYBRID_LAYER = {'write_rows': 'all', 'key_map': 'l2', 'd_mem': 16, 'qk_conv': 4, 'seq_delta': True, 'tie_qk': True,
                'keys_from_input': True, 'doc_value': True, 'value_norm': True}


def test_a_memory_kind_per_layer_folds_each_layer_as_its_own_kind(tmp_path):
    """Folded once from an empty memory (no layer reads anything yet, so each layer's input depends only on the
    shared attention weights), the hybrid's layer 0 writes what a model of layer 0's kind throughout writes, and
    its layer 1 what a model of the base kind writes; each layer's state has its own shape."""
    torch.manual_seed(0)
    mixed = CtxModel(Config(**TINY, layers={'0': HYBRID_LAYER})).eval()
    kinds = {'l2': CtxModel(Config(**{**TINY, **HYBRID_LAYER})).eval(), 'dpfp': CtxModel(Config(**TINY)).eval()}
    with torch.no_grad():
        for b in mixed.blocks:
            torch.nn.init.normal_(b.mv.weight, std=0.5)
        for m in kinds.values():   # every weight of the hybrid that has the same shape there
            own = m.state_dict()
            m.load_state_dict({k: v for k, v in mixed.state_dict().items() if k in own and own[k].shape == v.shape}, strict=False)
        assert mixed.cfg.state_size == (16 * 32 + 16) + (48 * 32 + 48)
        tok = torch.randint(8, 64, (1, 16), generator=torch.Generator().manual_seed(1))
        tok[0, 0], tok[0, 3] = 3, 18      # a document header, for doc_value
        (x0, _), (x1, z1) = mixed.unpack(mixed.fold(tok, mixed.empty_state()))
        (a0, _), _ = kinds['l2'].unpack(kinds['l2'].fold(tok, kinds['l2'].empty_state()))
        _, (m1, mz1) = kinds['dpfp'].unpack(kinds['dpfp'].fold(tok, kinds['dpfp'].empty_state()))
    assert x0.shape == (1, 16, 32) and x1.shape == (1, 48, 32)
    assert x0.abs().sum() > 0 and x1.abs().sum() > 0
    assert torch.allclose(x0, a0, atol=1e-6) and torch.allclose(x1, m1, atol=1e-6) and torch.allclose(z1, mz1, atol=1e-6)


def test_a_hybrid_decodes_with_a_cache_as_at_once_and_exports(tmp_path):
    """Only layer 0 convolves its queries: the cache carries [3, 16] query rows per layer (zeros in layer 1)."""
    torch.manual_seed(3)
    cfg = Config(**TINY, layers={'0': HYBRID_LAYER})
    assert cfg.q_cache == (3, 16)
    model = CtxModel(cfg).eval()
    with torch.no_grad():
        for b in model.blocks:
            b.mv.weight.normal_()
        state = model.fold(torch.randint(0, 64, (1, 16)), model.empty_state())
        q = torch.randint(0, 64, (1, 7))
        whole, _ = model.decode(q, state)
        steps, cache = [], None
        for t in range(7):
            lg, cache = model.decode(q[:, t:t + 1], state, cache, offset=t)
            steps.append(lg)
    assert all(c[2].shape == (1, 3, 16) for c in cache) and cache[1][2].abs().sum() == 0
    assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)
    out = export_config(tmp_path, {**TINY, 'name': 'hybrid', 'layers': {'0': HYBRID_LAYER}})
    exported = json.loads((out / 'config.json').read_text())
    assert exported['q_cache'] == [3, 16] and exported['state_size'] == cfg.state_size


def test_a_layer_may_set_only_its_memorys_fields():
    with pytest.raises(ValueError, match='d_model'):
        Config(**TINY, layers={'1': {'d_model': 64}}).layer(1)
    with pytest.raises(ValueError, match='share qk_conv'):
        Config(**TINY, layers={'0': {'qk_conv': 4}, '1': {'qk_conv': 3}}).q_cache


def test_memories_off_leaves_those_memories_out_of_a_fold_and_switches_them_back_on():
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, write_rows='all', key_map='l2', seq_delta=True)).eval()
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.5)   # values away from zero, so that every write shows
    S = torch.randint(8, 64, (2, 3, TINY['seg_len']), generator=torch.Generator().manual_seed(2))

    def fold():
        state = model.empty_state(2, 'cpu')
        for i in range(S.shape[1]):
            state = model.fold(S[:, i], state)
        return model.unpack(state)

    with torch.no_grad(), model.memories_off([0]):
        (m0, _), (m1, _) = fold()
    assert all(b.has_memory for b in model.blocks)
    (e0, _), (e1, _) = model.unpack(model.empty_state(2, 'cpu'))
    assert torch.equal(m0, e0) and not torch.equal(m1, e1)   # layer 0 as it starts, layer 1 written
    with torch.no_grad():
        (_, _), (full1, _) = fold()
    assert not torch.equal(m1, full1)   # layer 1 no longer reads what layer 0 would have fed it
    with pytest.raises(RuntimeError), model.memories_off([0, 1]):
        raise RuntimeError('an evaluation that fails')
    assert all(b.has_memory for b in model.blocks)


def test_keep_top_keeps_the_k_largest_gates_of_each_stream_and_all_of_a_short_one():
    from model import keep_top
    g = torch.tensor([[0.1, 0.9, 0.3, 0.7], [0.5, 0.2, 0.8, 0.6]]).unsqueeze(-1).requires_grad_()
    kept = keep_top(g, 2)
    assert kept[..., 0].tolist() == [[0.0, 0.8999999761581421, 0.0, 0.699999988079071], [0.0, 0.0, 0.800000011920929, 0.6000000238418579]]
    kept.sum().backward()
    assert g.grad[..., 0].tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert torch.equal(keep_top(g, 4), g) and torch.equal(keep_top(g[:, :3], 5), g[:, :3])


def test_write_topk_limits_a_layers_writes_and_exports(tmp_path):
    """With write_topk 1 a segment writes what its strongest-gated row alone writes: folding the segment equals
    folding it with every other row's gate closed."""
    torch.manual_seed(4)
    layer = {**HYBRID_LAYER, 'write_topk': 1}
    model = CtxModel(Config(**TINY, layers={'0': layer})).eval()
    with torch.no_grad():
        model.blocks[0].mv.weight.normal_()
    dense = CtxModel(Config(**TINY, layers={'0': HYBRID_LAYER})).eval()
    dense.load_state_dict(model.state_dict())
    tok = torch.randint(8, 64, (1, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (m0, _), _ = model.unpack(model.fold(tok, model.empty_state()))
        orig = dense.blocks[0].gate
        def strongest_only(t):
            g = orig(t)
            return g * (g == g.max(1, keepdim=True).values)
        dense.blocks[0].gate = strongest_only
        (d0, _), _ = dense.unpack(dense.fold(tok, dense.empty_state()))
    assert m0.abs().sum() > 0 and torch.allclose(m0, d0, atol=1e-6)
    out = export_config(tmp_path, {**TINY, 'name': 'topk', 'layers': {'0': layer}})
    assert json.loads((out / 'config.json').read_text())['state_size'] == model.cfg.state_size
