"""train.py's pieces that run before and after the GPU loop: the family mix and the ranked where_defined eval."""
import argparse
import functools
import os
import random
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.dirname(__file__))
import train  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from test_tasks import L, TOKENIZER, pool, stdlib_dir  # noqa: E402,F401  (fixtures shared with the sampler tests)


def batch_args(**kw):
    """train.py's flags that Batches reads, at their defaults (sampler knobs None: TaskSampler's own), with kw on
    top: one place to add a new sampler flag."""
    return argparse.Namespace(**{'tokenizer': TOKENIZER, 'seed': 0, 'ask_all': False, 'families': 'passkey',
                                 'min_batch': 2, 'tokens_per_step': 2 * 2 * 64, 'seg_len': None, 'burn_segs': 0,
                                 'win': None, 'def_lead': None, 'max_defs': None, 'mentions': None, 'near': None, 'keep_names': None,
                                 'names_per_file': None, 'share_dir': None, 'drop_memory': None, 'drop_families': None, 'mix_segs': 0,
                                 'long_steps': None, 'long_dropped': None, 'long_families': None, 'absent': 0.0,
                                 **kw})


def tiny_cfg():
    """The smallest model the sampler's batches fit: the shipped tokenizer's vocabulary, the sampler tests' segments."""
    return Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=L, mem_tokens=4, d_mem=8, dpfp_nu=1)


@functools.lru_cache(maxsize=1)
def tokenizer():
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=TOKENIZER)


def asks_pass_keys(Q):
    """Whether every question of a batch asks for a pass key."""
    return all('pass key' in tokenizer().decode([int(t) for t in q if t]) for q in Q)


def test_family_mix_takes_weights_or_the_defaults():
    assert train.family_mix('passkey:1,where_defined:3') == {'passkey': 1.0, 'where_defined': 3.0}
    assert train.family_mix('passkey') == {'passkey': train.FAMILIES['passkey']}
    with pytest.raises(SystemExit, match='unknown family'):
        train.family_mix('passkey,wher_defined')


def test_the_evaluation_asks_the_dropped_steps_families_too():
    ns = argparse.Namespace
    assert train.eval_families(ns(families='where_defined', drop_families='passkey')) == ['where_defined', 'passkey']
    assert train.eval_families(ns(families='passkey:1,where_defined:3', drop_families='passkey')) == ['passkey', 'where_defined']
    assert train.eval_families(ns(families='passkey', drop_families=None)) == ['passkey']


def test_rank_eval_ranks_the_stream_paths(pool):  # noqa: F811
    cfg = tiny_cfg()
    model = CtxModel(cfg)
    args = argparse.Namespace(tokenizer=TOKENIZER, eval_n=4)
    top1, top3 = train.rank_eval(model, pool, args, cfg, 4, dev='cpu')
    assert 0 <= top1 <= top3 <= 1
    top1, top3 = train.rank_eval(model, pool, args, cfg, 4, dev='cpu', keep_names=1.0)
    assert 0 <= top1 <= top3 <= 1
    assert train.rank_eval(model, pool, args, cfg, 4, use_memory=False, dev='cpu')[0] <= 1
    top1, top3 = train.rank_eval(model, pool, args, cfg, 4, dev='cpu', family='repo_defined')
    assert 0 <= top1 <= top3 <= 1


def test_curriculum_options_reach_the_sampler(pool):  # noqa: F811
    args = argparse.Namespace(tokenizer=TOKENIZER, eval_n=2, win='48,64', def_lead=0, max_defs=1, mentions=0.5, near=0.5,
                              keep_names=0.5, share_dir=0.0, names_per_file=2, seg_len=None)
    assert train.curriculum(args) == {'win': (48, 64), 'def_lead': 0, 'max_defs': 1, 'mentions': 0.5, 'near': 0.5,
                                      'keep_names': 0.5, 'share_dir': 0.0, 'names_per_file': 2}
    cfg = tiny_cfg()
    top1, top3 = train.rank_eval(CtxModel(cfg), pool, args, cfg, 4, dev='cpu', as_trained=True)
    assert 0 <= top1 <= top3 <= 1


def test_seg_len_sets_the_training_streams_only(pool):  # noqa: F811
    cfg = tiny_cfg()
    args = batch_args(ask_all=True, families='where_defined', win='16,48', def_lead=8, max_defs=2, mentions=0.5, seg_len=64)
    nseg, burn, kind, S, Q, Y, owner = next(iter(train.Batches(pool, args, cfg, argparse.Namespace(value=2))))
    assert nseg == 2 and burn == 0 and S.shape[1:] == (2, 64) and L != 64
    assert train.train_seg_len(argparse.Namespace(seg_len=None), cfg) == L


def test_steps_that_drop_memories_draw_their_batch_from_the_drop_families(pool):  # noqa: F811
    """--drop_families: the worker decides which steps drop memories, and those steps ask only pass keys (run 21:
    memory-token layers asked names they cannot bind learnt nothing, run 20)."""
    cfg = tiny_cfg()
    args = batch_args(families='where_defined', drop_memory='0:0.5', drop_families='passkey')
    seen = set()
    for _, (nseg, burn, kind, S, Q, Y, owner) in zip(range(16), train.Batches(pool, args, cfg, argparse.Namespace(value=2))):
        asks_key = asks_pass_keys(Q)
        assert asks_key == (kind == 'dropped')
        seen.add(kind)
    assert seen == {'dropped', 'full'}
    no_drop = batch_args(families='where_defined', drop_families='passkey')
    assert {k for _, (_, _, k, *_) in zip(range(4), train.Batches(pool, no_drop, cfg, argparse.Namespace(value=2)))} == {'full'}


def test_long_steps_are_longer_streams_of_their_own_families_with_every_memory_on(pool):  # noqa: F811
    """--long_steps SEGS:P: that share of batches is SEGS segments long and asks --long_families, never with memories
    dropped; the rest keep the curriculum's length; a long batch is never stale, and its exact match has its own ema."""
    cfg = tiny_cfg()
    args = batch_args(families='where_defined', drop_memory='0:0.5', long_steps='3:0.4', long_families='passkey')
    kinds = set()
    for _, (nseg, _, kind, S, Q, *_) in zip(range(24), train.Batches(pool, args, cfg, argparse.Namespace(value=2))):
        asks_key = asks_pass_keys(Q)
        assert (nseg, S.shape[1], asks_key) == ((3, 3, True) if kind == 'long' else (2, 2, False))
        kinds.add(kind)
    assert kinds == {'long', 'dropped', 'full'}
    st = {'nseg': 2, 'seg_len': L}
    assert not train.stale(3, L, st, args) and not train.stale(2, L, st, args) and train.stale(4, L, st, args)
    train.track_exact(st, 1.0, 'long')
    assert st['ema_long'] == pytest.approx(0.03) and 'ema' not in st
    assert train.parse_long_steps('64:0.15') == (64, 0.15) and train.parse_long_steps(None) == (0, 0.0)
    for bad in ('64', 'x:0.1', '0:0.1', '64:2'):
        with pytest.raises(SystemExit, match='--long_steps'):
            train.parse_long_steps(bad)


def test_long_dropped_steps_are_longer_pass_key_streams_of_their_own_kind(pool):  # noqa: F811
    """--long_dropped SEGS:P: that share of batches is SEGS segments long from --long_families, beside --long_steps'
    own; the training loop drops the --drop_memory layers on them (kind 'long_dropped'); never stale; own ema."""
    cfg = tiny_cfg()
    args = batch_args(families='where_defined', drop_memory='0:0.3', drop_families='passkey', long_steps='3:0.3',
                      long_dropped='4:0.3', long_families='passkey')
    kinds = set()
    for _, (nseg, _, kind, S, Q, *_) in zip(range(32), train.Batches(pool, args, cfg, argparse.Namespace(value=2))):
        want = {'long': (3, True), 'long_dropped': (4, True), 'dropped': (2, True), 'full': (2, False)}[kind]
        assert (nseg, S.shape[1]) == (want[0], want[0]) and asks_pass_keys(Q) == want[1]
        kinds.add(kind)
    assert kinds == {'long', 'long_dropped', 'dropped', 'full'}
    st = {'nseg': 2, 'seg_len': L}
    assert not train.stale(4, L, st, args) and not train.stale(3, L, st, args) and train.stale(5, L, st, args)
    train.track_exact(st, 1.0, 'long_dropped')
    assert st['ema_long_dropped'] == pytest.approx(0.03) and 'ema_long' not in st
    with pytest.raises(SystemExit, match='--long_dropped'):
        train.parse_long_steps('256', '--long_dropped')


def test_burnt_segments_fold_into_the_state_without_gradients(pool):  # noqa: F811
    """--burn_segs: batches carry up to N more segments; run_stream folds them without gradients, so the answers
    see the same memory as a whole-stream forward pass, and only the later segments train."""
    cfg = Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=64, mem_tokens=4, d_mem=8, dpfp_nu=1,
                 write_rows='all', key_map='l2', seq_delta=True, value_norm=True)
    args = batch_args(ask_all=True, burn_segs=3)
    burns, long = set(), None
    for _, (nseg, burn, _, *batch) in zip(range(12), train.Batches(pool, args, cfg, argparse.Namespace(value=2))):
        assert nseg == 2 and batch[0].shape[1] == burn + 2 and 0 <= burn <= 3
        burns.add(burn)
        long = batch if burn else long
    assert len(burns) > 1
    model = CtxModel(cfg)
    S, Q, Y, owner = long
    S = S[:, -3:]          # 3 segments: the first burnt, 2 trained (the question is about the whole stream; any will do)
    assert not train.fold_segments(model, S[:, :1]).requires_grad   # burnt segments: no graph kept, no gradient
    torch.manual_seed(0)
    whole = model(S, Q, Y, owner=owner)
    for ckpt in (False, True):
        part = train.run_stream(model, S, Q, Y, owner, burn=1, ckpt_segments=ckpt)
        assert torch.allclose(part[2], whole[2], atol=1e-5) and float(part[3]) == float(whole[3])
        model.zero_grad()
        part[0].backward()
        assert model.emb.weight.grad is not None


def test_carried_memory_continues_the_stream(pool):  # noqa: F811
    """--carry: a batch that starts from the memory the last batch ended with answers as if the two batches'
    segments were one stream (the first part burnt); Carry resets rows to an empty memory with probability 1/mean."""
    cfg = Config(vocab_size=8192, d_model=32, n_layers=2, n_heads=2, seg_len=64, mem_tokens=4, d_mem=8, dpfp_nu=1,
                 write_rows='all', key_map='l2', seq_delta=True, value_norm=True)
    args = batch_args()
    batches = iter(train.Batches(pool, args, cfg, argparse.Namespace(value=2)))
    (_, _, _, S1, *_), (_, _, _, S2, Q, Y, owner) = next(batches), next(batches)
    model = CtxModel(cfg)
    for b in model.blocks:     # a fresh model writes zero values: give it some to carry
        torch.nn.init.normal_(b.mv.weight, std=0.5)
    end = train.run_stream(model, S1, Q, Y, owner)[4]
    carried = train.run_stream(model, S2, Q, Y, owner, state=end)
    whole = train.run_stream(model, torch.cat([S1, S2], 1), Q, Y, owner, burn=2)
    assert torch.allclose(carried[2], whole[2], atol=1e-5) and torch.allclose(carried[4], whole[4], atol=1e-5)
    assert not torch.allclose(carried[4], train.run_stream(model, S2, Q, Y, owner)[4])

    carry = train.Carry(mean=1e9)
    assert carry.start(2, 'cpu') is None            # nothing carried yet
    carry.end(end, 2)
    assert torch.equal(carry.start(2, 'cpu'), end) and carry.age.tolist() == [2, 2]
    assert carry.start(3, 'cpu') is None            # the batch size changed: start afresh
    carry = train.Carry(mean=1)                      # reset every step
    carry.start(2, 'cpu')
    carry.end(end, 2)
    assert float(carry.start(2, 'cpu').abs().sum()) == 0 and carry.age.tolist() == [0, 0]


@pytest.mark.parametrize('flag, kept', [('fresh_row_memory', 1), ('fresh_token_memory', 0)])
def test_fresh_memory_flags_carry_only_the_other_kind_of_layer(flag, kept):
    """A hybrid (layer 0 written by every row, layer 1 by the memory tokens): --fresh_row_memory's mask carries
    layer 1 and starts layer 0 empty; --fresh_token_memory's the other way round."""
    from test_model import HYBRID_LAYER
    model = CtxModel(Config(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8,
                            layers={'0': HYBRID_LAYER}))
    args = argparse.Namespace(carry=16, fresh_row_memory=flag == 'fresh_row_memory', fresh_token_memory=flag == 'fresh_token_memory')
    carry = train.Carry(mean=1e9, mask=train.carry_mask(model, args))
    carry.start(2, 'cpu')
    end = torch.randn(2, model.cfg.state_size)
    carry.end(end, 4)
    started, ended = model.unpack(carry.start(2, 'cpu')), model.unpack(end)
    assert torch.equal(started[kept][0], ended[kept][0]) and torch.equal(started[kept][1], ended[kept][1])
    assert started[1 - kept][0].abs().sum() == 0 and started[1 - kept][1].abs().sum() == 0


def test_carry_mask_refuses_both_fresh_flags_or_one_without_carry_and_is_none_without_them():
    model = CtxModel(Config(vocab_size=64, d_model=32, n_layers=1, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8))
    ns = argparse.Namespace
    assert train.carry_mask(model, ns(carry=16, fresh_row_memory=False, fresh_token_memory=False)) is None
    assert train.carry_mask(model, ns(carry=0, fresh_row_memory=False, fresh_token_memory=False)) is None
    for bad in (ns(carry=16, fresh_row_memory=True, fresh_token_memory=True),
                ns(carry=0, fresh_row_memory=True, fresh_token_memory=False),
                ns(carry=0, fresh_row_memory=False, fresh_token_memory=True)):
        with pytest.raises(SystemExit):
            train.carry_mask(model, bad)


def test_optimizer_step_skips_non_finite_losses_and_gradients():
    from train import optimizer_step
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)
    opt = torch.optim.AdamW(lin.parameters(), lr=0.1)
    before = [p.detach().clone() for p in lin.parameters()]
    x = torch.randn(3, 4)
    assert not optimizer_step(lin, opt, lin(x).sum() * float('nan'))
    y = lin(x).sum()
    finite_loss_nan_grad = (y - y.detach()).abs().sqrt()    # 0, with an infinite derivative times 0
    assert torch.isfinite(finite_loss_nan_grad)
    assert not optimizer_step(lin, opt, finite_loss_nan_grad)
    assert all(torch.equal(a, b) for a, b in zip(before, lin.parameters()))
    assert optimizer_step(lin, opt, lin(x).pow(2).sum())
    assert not all(torch.equal(a, b) for a, b in zip(before, lin.parameters()))


def test_carry_ask_back_keeps_the_questions_of_the_last_streams_while_their_memory_is_carried():
    """ask_back 2: past() gives the questions of the last two streams, padded to one length (targets with -100),
    each with the row it asked about; a third stream pushes out the first; a reset row's questions are dropped."""
    import train
    state = torch.zeros(2, 3)
    q = lambda n, L, v: (torch.full((n, L), v), torch.full((n, L), v), torch.arange(n) % 2)
    carry = train.Carry(mean=1e9, ask_back=2)
    carry.start(2, 'cpu')
    assert carry.past('cpu') is None
    carry.end(state, 4, q(2, 3, 1))
    carry.start(2, 'cpu')
    carry.end(state, 4, q(4, 5, 2))
    Q, Y, owner = carry.past('cpu')
    assert Q.shape == (6, 5) and Q[0].tolist() == [1, 1, 1, 0, 0] and Y[0].tolist() == [1, 1, 1, -100, -100]
    assert owner.tolist() == [0, 1, 0, 1, 0, 1]
    carry.start(2, 'cpu')
    carry.end(state, 4, q(1, 2, 3))
    assert carry.past('cpu')[0][:, 0].tolist() == [2, 2, 2, 2, 3]
    carry.mean = 1                                    # every row is reset: nothing it held can be asked
    carry.start(2, 'cpu')
    assert carry.past('cpu') is None


def test_fast_memory_puts_the_memory_parameters_of_its_layers_in_faster_groups():
    from test_model import HYBRID_LAYER
    model = CtxModel(Config(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8,
                            layers={'0': HYBRID_LAYER}))
    layers, mult = train.parse_fast_memory('0:10')
    opt = train.make_optimizer(model, 1e-3, fast_layers=layers, fast_mult=mult)
    train.set_lr(opt, 1e-3)
    lr_of = {id(p): g['lr'] for g in opt.param_groups for p in g['params']}
    assert len(lr_of) == sum(1 for _ in model.parameters())
    named = dict(model.named_parameters())
    assert lr_of[id(named['blocks.0.mv.weight'])] == pytest.approx(1e-2)
    assert lr_of[id(named['blocks.0.qconv.w'])] == pytest.approx(1e-2)
    assert lr_of[id(named['blocks.0.qkv.weight'])] == pytest.approx(1e-3)
    assert lr_of[id(named['blocks.1.mv.weight'])] == pytest.approx(1e-3)
    assert train.parse_fast_memory(None) == ((), 1.0) and train.parse_fast_memory('3,4:5') == ((3, 4), 5.0)
    with pytest.raises(SystemExit):
        train.parse_fast_memory('a:b')


def test_steps_with_memories_dropped_keep_their_own_running_exact_match():
    st = {'ema': 0.5}
    train.track_exact(st, 0.0, kind='dropped')
    assert st['ema'] == 0.5 and st['ema_dropped'] == 0.0
    train.track_exact(st, 1.0, kind='full')
    assert abs(st['ema'] - (0.97 * 0.5 + 0.03)) < 1e-12 and st['ema_dropped'] == 0.0


@torch.no_grad()
def test_drop_memory_switches_the_layers_memories_off_for_a_step_and_back_on():
    """--drop_memory: a switched-off layer's memory passes through a fold unchanged and is not read (the next layer
    writes something else); use_memories() brings every configured memory back, and never one the config has not."""
    from test_model import HYBRID_LAYER
    torch.manual_seed(0)
    small = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8, layers={'0': HYBRID_LAYER})
    model = CtxModel(Config(**small))
    for p in model.parameters():   # a fresh memory writes zeros (zero value projections): make it write
        p.add_(0.2 * torch.randn_like(p))
    model.eval()
    S = torch.randint(0, 64, (1, 3, 16))
    state = train.fold_segments(model, S[:, :2])
    full = model.unpack(train.fold_segments(model, S[:, 2:], state))
    model.use_memories(off=(0,))
    dropped = model.unpack(train.fold_segments(model, S[:, 2:], state))
    before = model.unpack(state)
    assert torch.equal(dropped[0][0], before[0][0]) and not torch.equal(full[0][0], before[0][0])
    assert not torch.allclose(dropped[1][0], full[1][0])
    model.use_memories()
    again = model.unpack(train.fold_segments(model, S[:, 2:], state))
    assert all(torch.equal(a, b) for a, b in zip(again[1], full[1])) and torch.equal(again[0][0], full[0][0])
    one = CtxModel(Config(**small, memory_layers=[0]))
    one.use_memories(off=(0,))
    one.use_memories()
    assert [b.has_memory for b in one.blocks] == [True, False]
    assert train.parse_drop_memory('0,4,5:0.25') == ((0, 4, 5), 0.25) and train.parse_drop_memory(None) == ((), 0.0)
    for bad in ('a:b', '0:2'):
        with pytest.raises(SystemExit):
            train.parse_drop_memory(bad)


def test_the_curriculum_lengthens_the_segments_first_then_adds_segments():
    """--grow_seg_len (run 23: memory tokens switch on at 64-128 rows and must be grown to the product's 512)."""
    args = argparse.Namespace(grow_seg_len=256, max_segs=4, mastery=0.8)
    st = {'seg_len': 64, 'nseg': 2, 'step': 1000, 'last_up': 0, 'ema': 0.9}
    grown = [train.lengthen(st, args) for _ in range(4)]
    assert grown == [{'curriculum_seg_len': 128}, {'curriculum_seg_len': 256}, {'curriculum': 4}, None]
    assert (st['seg_len'], st['nseg']) == (256, 4)


def test_mastery_waits_for_the_dropped_steps_and_150_steps():
    args = argparse.Namespace(mastery=0.8)
    st = {'step': 400, 'last_up': 200, 'ema': 0.9, 'ema_dropped': 0.5}
    assert train.mastered(st, args, drop_p=0.0)
    assert not train.mastered(st, args, drop_p=0.5)
    st['ema_dropped'] = 0.85
    assert train.mastered(st, args, drop_p=0.5)
    st['last_up'] = 300
    assert not train.mastered(st, args, drop_p=0.5)


def test_workers_draw_at_the_segment_length_the_curriculum_grows_to(pool):  # noqa: F811
    cfg = tiny_cfg()
    seg_len = argparse.Namespace(value=32)
    batches = iter(train.Batches(pool, batch_args(), cfg, argparse.Namespace(value=2), seg_len))
    assert next(batches)[3].shape[1:] == (2, 32)
    seg_len.value = 64
    assert next(batches)[3].shape[1:] == (2, 64)


def test_mix_segs_draws_each_doubling_of_length_about_as_often_and_only_within_its_range():
    rng = random.Random(0)
    assert {train.draw_segs(rng, 16) for _ in range(50)} == {16}          # no mix: the curriculum's length
    assert train.draw_segs(rng, 16, 16) == 16 and train.draw_segs(rng, 8, 16) == 8
    draws = [train.draw_segs(rng, 64, 4) for _ in range(4000)]
    assert min(draws) == 4 and max(draws) == 64
    per_doubling = [sum(lo <= d < 2 * lo for d in draws) for lo in (5, 10, 20)]   # 5-9, 10-19, 20-39: 1/4 each
    assert all(800 < n < 1200 for n in per_doubling), per_doubling


def test_a_mixed_batch_is_stale_only_when_longer_than_the_curriculum_allows():
    st, fixed, mixed = {'nseg': 16, 'seg_len': 512}, argparse.Namespace(mix_segs=0, long_steps=None, long_dropped=None), argparse.Namespace(mix_segs=4, long_steps=None, long_dropped=None)
    assert not train.stale(16, 512, st, fixed) and train.stale(8, 512, st, fixed)
    assert not train.stale(8, 512, st, mixed) and not train.stale(16, 512, st, mixed) and train.stale(32, 512, st, mixed)
    assert train.stale(16, 256, st, mixed)


def test_workers_mix_stream_lengths_at_the_same_tokens_a_step(pool):  # noqa: F811
    cfg = tiny_cfg()
    args = batch_args(mix_segs=2, tokens_per_step=16 * 32, min_batch=1)
    batches = iter(train.Batches(pool, args, cfg, argparse.Namespace(value=8), argparse.Namespace(value=32)))
    shapes = [next(batches)[3].shape for _ in range(16)]
    assert {s[1] for s in shapes} <= set(range(2, 9)) and len({s[1] for s in shapes}) > 2
    assert all(s[0] == 16 // s[1] for s in shapes)    # shorter streams, more of them


def test_gate_cost_takes_every_memory_layer_or_the_layers_named():
    assert train.parse_gate_cost(None) == ((), 0.0) and train.parse_gate_cost('4') == ((), 4.0)
    assert train.parse_gate_cost('0:2.5') == ((0,), 2.5) and train.parse_gate_cost('0,2:1') == ((0, 2), 1.0)
    for bad in ('a', 'a:1', '0:b'):
        with pytest.raises(SystemExit):
            train.parse_gate_cost(bad)
