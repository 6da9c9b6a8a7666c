"""binding_probe: its tally (what 'bound', 'blind' and 'latest' mean, on score matrices made by hand) and its flags."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from binding_probe import tally  # noqa: E402


def test_a_model_that_binds_names_to_paths():
    # question i prefers path i by 2 nats
    r = tally([([[-1.0, -3.0], [-3.0, -1.0]], [0.2, 0.7])])
    assert r['bound'] == 1.0 and r['blind'] == 0.0 and r['margin'] == 2.0 and r['q_effect'] == 2.0


def test_a_model_blind_to_the_question_keeping_the_last_write():
    # both questions prefer path 1, whose definition came later; the question moves nothing
    blind_latest = ([[-3.0, -1.0], [-3.0, -1.0]], [0.2, 0.7])
    blind_first = ([[-1.0, -3.0], [-1.0, -3.0]], [0.2, 0.7])
    r = tally([blind_latest, blind_first])
    assert r['bound'] == 0.0 and r['blind'] == 1.0 and r['latest_of_blind'] == 0.5
    assert r['margin'] == 0.0 and r['q_effect'] == 0.0


def test_three_definitions():
    r = tally([([[-1, -2, -3], [-2, -1, -3], [-2, -3, -1]], [0.1, 0.5, 0.9])])
    assert r['bound'] == 1.0 and r['margin'] == 1.0


def test_probe_flags_cover_every_curriculum_option():
    """train.curriculum reads every sampler flag train.py has; the probes' parser takes them from the same
    add_sampler_flags (a flag added to train.py alone broke binding_probe.py until run 15), with its own defaults."""
    from binding_probe import probe_args
    from train import curriculum
    a = probe_args('', 1).parse_args(['--config', 'c', '--weights', 'w', '--pool', 'p', '--keep_names', '1'])
    assert curriculum(a)['keep_names'] == 1.0
    assert (a.win, a.def_lead, a.max_defs) == ('256,768', 32, 2)
