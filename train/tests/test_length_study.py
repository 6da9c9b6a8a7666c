"""The synthetic length study (train/length_study.py): its samples and a few real training steps on the CPU."""
import json
import os
import subprocess
import sys

from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
import length_study as ls  # noqa: E402


def test_passkey_sample_hides_the_key_once_inside_one_segment():
    g = torch.Generator().manual_seed(3)
    S, qa, y = ls.sample(g, 'passkey', 4, 32, 256, 0)
    assert S.shape == (4, 32)
    flat = S.flatten().tolist()
    assert flat.count(ls.KEY) == 1
    at = flat.index(ls.KEY)
    assert at % 32 <= 32 - 6, 'the key and its digits sit in one segment'
    assert flat[at + 1:at + 6] == qa[1:].tolist()
    assert qa[0] == ls.Q
    assert y.tolist() == qa[1:].tolist() + [-100], 'logits at i predict the answer token i+1'


def test_facts_sample_asks_about_exactly_one_stored_fact():
    g = torch.Generator().manual_seed(5)
    S, qa, y = ls.sample(g, 'facts', 8, 32, 256, 6)
    flat = S.flatten().tolist()
    starts = [i for i, t in enumerate(flat) if t == ls.KEY]
    assert len(starts) == 6
    facts = [flat[i + 1:i + 7] for i in starts]
    asked = qa[1:].tolist()
    assert asked in facts and sum(f[:2] == asked[:2] for f in facts) == 1
    assert [t for t in y.tolist() if t != -100] == asked[-3:]


def test_question_name_drops_val_so_the_first_digit_follows_the_name():
    g = torch.Generator().manual_seed(5)
    S, qa, y = ls.sample(g, 'facts', 2, 32, 256, 2, question='name')
    flat = S.flatten().tolist()
    facts = [flat[i + 1:i + 7] for i, t in enumerate(flat) if t == ls.KEY]
    name, digits = qa[1:3].tolist(), qa[3:].tolist()
    assert len(qa) == 6 and name + [ls.VAL] + digits in facts
    assert y.tolist() == [-100, -100] + digits + [-100], 'the name\'s last row predicts the first digit'


def test_value_first_writes_the_digits_before_the_name():
    g = torch.Generator().manual_seed(5)
    S, qa, y = ls.sample(g, 'facts', 2, 32, 256, 2, order='value_first')
    flat = S.flatten().tolist()
    facts = [flat[i + 1:i + 7] for i, t in enumerate(flat) if t == ls.KEY]
    assert qa[4:].tolist() + [ls.VAL] + qa[1:3].tolist() in facts


def test_spread_puts_each_fact_in_a_segment_of_its_own():
    for seed in range(20):
        S, _, _ = ls.sample(torch.Generator().manual_seed(seed), 'facts', 3, 32, 256, 3, spread=True)
        assert [row.tolist().count(ls.KEY) for row in S] == [1, 1, 1]


def test_samples_differ_per_draw_and_repeat_per_seed():
    a_ = SimpleNamespace(task='passkey', facts=0, question='val', spread=False, order='name_first', device='cpu')
    a = ls.batch(torch.Generator().manual_seed(1), a_, 4, 2, 32, 256)
    b = ls.batch(torch.Generator().manual_seed(1), a_, 4, 2, 32, 256)
    assert all(torch.equal(x, z) for x, z in zip(a, b))
    assert len({tuple(q.tolist()) for q in a[1]}) > 1


def test_a_short_run_trains_and_evaluates(tmp_path):
    out = tmp_path / 'run'
    cmd = [sys.executable, os.path.join(os.path.dirname(ls.__file__), 'length_study.py'), '--minutes', '0.05',
           '--d_model', '32', '--n_layers', '2', '--n_heads', '2', '--seg_len', '16', '--mem_tokens', '4',
           '--d_mem', '8', '--eval_segs', '2,4', '--eval_n', '4', '--out', str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    recs = [json.loads(line) for line in open(out / 'log.jsonl')]
    assert recs[-1]['eval'] == 4 and 0 <= recs[-1]['exact'] <= 1
    assert any('trained' in r for r in recs) and (out / 'weights.pt').exists()
    table = subprocess.run(cmd[:2] + ['--report', str(out)], check=True, capture_output=True, text=True).stdout
    assert '| 2 segs | 4 segs |' in table and "| run | passkey | armt | mem rows | 48 | 4 |" in table


def test_grow_seg_len_lengthens_segments_on_mastery(tmp_path):
    out = tmp_path / 'grow'
    cmd = [sys.executable, os.path.join(os.path.dirname(ls.__file__), 'length_study.py'), '--minutes', '0.15',
           '--d_model', '32', '--n_layers', '2', '--n_heads', '2', '--seg_len', '8', '--grow_seg_len', '32',
           '--mem_tokens', '4', '--d_mem', '8', '--mastery', '0', '--max_segs', '2', '--eval_segs', '1',
           '--eval_n', '4', '--min_batch', '2', '--tokens_per_step', '16', '--out', str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    recs = [json.loads(line) for line in open(out / 'log.jsonl')]
    grown = [r['curriculum_seg_len'] for r in recs if 'curriculum_seg_len' in r]
    assert grown == [16, 32], 'doubling up to --grow_seg_len, one step per mastery'
    segs_at = [r['step'] for r in recs if 'curriculum' in r]
    assert not segs_at or segs_at[0] > max(r['step'] for r in recs if 'curriculum_seg_len' in r), 'segments after length'


def test_a_hybrid_with_a_dropped_memory_trains_and_evaluates_without_it(tmp_path):
    """--layers builds a memory kind per layer (here layer 0 with every row writing) and --drop_memory switches its
    memory off on that share of steps; the log keeps those steps' running exact match, and the run ends with an
    evaluation without it (eval_dropped)."""
    out = tmp_path / 'hybrid'
    layers = {'0': {'write_rows': 'all', 'key_map': 'l2', 'seq_delta': True, 'value_norm': True, 'd_mem': 32}}
    cmd = [sys.executable, os.path.join(os.path.dirname(ls.__file__), 'length_study.py'), '--minutes', '0.05',
           '--d_model', '32', '--n_layers', '2', '--n_heads', '2', '--seg_len', '16', '--mem_tokens', '4',
           '--d_mem', '8', '--eval_segs', '2', '--eval_n', '4', '--layers', json.dumps(layers),
           '--drop_memory', '0:0.5', '--tokens_per_step', '64', '--min_batch', '2', '--out', str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    recs = [json.loads(line) for line in open(out / 'log.jsonl')]
    assert recs[0]['config']['layers'] == layers
    assert recs[-1]['eval_dropped'] == 2 and 0 <= recs[-1]['exact'] <= 1
    steps = [r for r in recs if 'step' in r and 'nseg' in r]
    assert steps and all(0 <= r['ema_dropped'] <= 1 for r in steps), "the dropped steps' own running exact match"


def test_value_init_starts_the_values_away_from_zero(tmp_path):
    """--value_init: the value projections start at that std instead of ARMT's zero (run 22); with no training step
    (--minutes 0) the saved weights show the start itself."""
    def start(*extra):
        out = tmp_path / ('v' + '_'.join(extra))
        cmd = [sys.executable, os.path.join(os.path.dirname(ls.__file__), 'length_study.py'), '--minutes', '0',
               '--d_model', '32', '--n_layers', '2', '--n_heads', '2', '--seg_len', '16', '--mem_tokens', '4',
               '--d_mem', '8', '--eval_segs', '2', '--eval_n', '2', '--out', str(out), *extra]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        return torch.load(out / 'weights.pt')
    assert float(start()['blocks.0.mv.weight'].abs().max()) == 0
    mv = start('--value_init', '0.05')['blocks.1.mv.weight']
    assert 0.03 < float(mv.std()) < 0.07
