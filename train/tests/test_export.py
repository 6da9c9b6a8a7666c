import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from export import two_way  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from test_model import HYBRID_LAYER, TINY, export_config  # noqa: E402


def layer_size(cfg, i):
    return sum(math.prod(s) for s in cfg.layer_state_shapes(i))


@pytest.mark.parametrize('layer', [0, 1])
def test_two_way_empties_exactly_the_every_row_layers_state(layer):
    cfg = Config(**TINY, layers={str(layer): HYBRID_LAYER})
    start = sum(layer_size(cfg, i) for i in range(layer))
    assert two_way(CtxModel(cfg), 7) == {'after_segments': 7, 'empty': [[start, start + layer_size(cfg, layer)]]}


def test_two_way_needs_both_kinds_of_memory():
    with pytest.raises(SystemExit):
        two_way(CtxModel(Config(**TINY)), 7)                         # memory tokens only
    with pytest.raises(SystemExit):
        two_way(CtxModel(Config(**{**TINY, **HYBRID_LAYER})), 7)     # every row only


def test_two_way_is_written_to_config_and_changes_the_model_id(tmp_path):
    cfg = {'name': 'tiny-hybrid', **TINY, 'layers': {'0': HYBRID_LAYER}}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    plain = json.loads((export_config(tmp_path / 'a', cfg) / 'config.json').read_text())
    two = json.loads((export_config(tmp_path / 'b', cfg, extra=['--two_way_after', '3']) / 'config.json').read_text())
    assert 'two_way' not in plain and two['two_way']['after_segments'] == 3
    assert two['model_id'] != plain['model_id']   # a snapshot's second state means nothing to a one-way fold
