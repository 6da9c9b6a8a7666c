"""long_probe: the memory changes it tries (scaling a layer's M, capping it along a fold) do what they say."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from long_probe import decay_variants, fold, mem_norms, off_variants, scaled  # noqa: E402
from model import Config, CtxModel  # noqa: E402

TINY = dict(vocab_size=64, d_model=32, n_layers=2, n_heads=2, seg_len=16, mem_tokens=4, d_mem=8, write_rows='all',
            key_map='l2', seq_delta=True)


def tiny_model(**extra):
    torch.manual_seed(0)
    model = CtxModel(Config(**TINY, **extra)).eval()
    for b in model.blocks:
        torch.nn.init.normal_(b.mv.weight, std=0.5)
    return model


def test_scaled_multiplies_each_layers_memory_and_nothing_else():
    model = tiny_model()
    state = torch.randn(2, model.cfg.state_size)
    out = scaled(model, state, torch.tensor([[0.5, 0.0], [1.0, 2.0]]))
    (m0, z0), (m1, z1) = model.unpack(out)
    (a0, c0), (a1, c1) = model.unpack(state)
    assert torch.allclose(m0[0], 0.5 * a0[0]) and torch.equal(m1[0], torch.zeros_like(a1[0]))
    assert torch.allclose(m1[1], 2 * a1[1]) and torch.equal(z0, c0) and torch.equal(z1, c1)


def test_a_capped_fold_keeps_every_memory_under_its_cap():
    model = tiny_model()
    S = torch.randint(8, 64, (2, 6, 16), generator=torch.Generator().manual_seed(1))
    state, at_ref, trace = fold(model, S, ref=2)
    assert sorted(trace) == [1, 2, 4, 6] and at_ref.shape == (2, 2)
    cap = at_ref * 0.5
    capped, _, _ = fold(model, S, ref=2, cap=cap)
    assert (mem_norms(model, capped) <= cap * (1 + 1e-4)).all()
    assert (mem_norms(model, state) > cap).any()


def test_off_variants_name_both_answers_and_switch_every_memory_back_on():
    model = tiny_model()
    S = torch.randint(8, 64, (2, 3, 16), generator=torch.Generator().manual_seed(2))
    Q = torch.randint(8, 64, (2, 5), generator=torch.Generator().manual_seed(3))
    Y = torch.full((2, 5), -100)
    Y[:, 3:] = Q[:, 3:]
    out = off_variants(model, fold(model, S, ref=3)[0], S, Q, Y, torch.arange(2), [0])
    assert list(out) == ['layers [0] unread at question time', 'layers [0] neither written nor read']
    assert all(0.0 <= x <= 1.0 for x in out.values())
    assert all(b.has_memory for b in model.blocks)


def test_a_reset_fold_empties_the_every_row_memories_each_window_and_keeps_the_memory_tokens():
    model = tiny_model(layers={'1': dict(write_rows='mem', key_map='dpfp', seq_delta=False)})
    S = torch.randint(8, 64, (2, 6, 16), generator=torch.Generator().manual_seed(4))
    keep = model.mask_without(every_row=True)
    reset, _, _ = fold(model, S, ref=6, reset=(keep, 4, 0))      # emptied before segment 4
    last_window, _, _ = fold(model, S[:, 4:], ref=2)
    whole, _, _ = fold(model, S, ref=6)
    (r0, rz0), (r1, _) = model.unpack(reset)
    (w0, wz0), _ = model.unpack(last_window)
    # layer 0 reads nothing from layer 1, so its memory is the last window's alone; layer 1's kept all six segments
    assert torch.allclose(r0, w0, atol=1e-5) and torch.allclose(rz0, wz0, atol=1e-5)
    assert not torch.allclose(r1, model.unpack(last_window)[1][0], atol=1e-3)
    assert not torch.allclose(r0, model.unpack(whole)[0][0], atol=1e-3)


def test_decay_variants_shrink_the_every_row_memory_alone_and_put_the_decay_back():
    model = tiny_model(layers={'1': dict(write_rows='mem', key_map='dpfp', seq_delta=False)})
    S = torch.randint(8, 64, (2, 6, 16), generator=torch.Generator().manual_seed(5))
    Q = torch.randint(8, 64, (2, 5), generator=torch.Generator().manual_seed(6))
    Y = torch.full((2, 5), -100)
    Y[:, 3:] = Q[:, 3:]
    whole = fold(model, S, ref=6)[2][6]
    out = decay_variants(model, S, Q, Y, torch.arange(2), [0.5])
    (name, (ex, norms)), = out.items()
    assert name == 'every-row memories decayed by 0.5 per segment' and 0.0 <= ex <= 1.0
    assert norms[0] < whole[0]
    assert [b.decay for b in model.blocks] == [1.0, 1.0]
