"""A catalogue's shape, and the cold-start scorer taking over where a trained model meets a
catalogue unlike those it was trained on; a model fitted on top of the cold-start scorer saved,
checked and loaded like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scoring_support import CARD, EVIDENCE, data, reference, small_catalogue

from matcher import cli
from matcher.catalogue import Catalogue
from matcher.scoring import ColdStartScorer, load_model, update_card
from matcher.scoring.shape import catalogue_shape, shape_range, suited, unlike
from training.fit import fit


def _sparse(n: int = 10) -> Catalogue:
    """A council-style feed: no locations, no need codes, no timetable, no cost."""
    return Catalogue.from_records([
        {"id": f"a{k}", "name": f"Group {k}", "description": "<p>Friendly group &amp; tea</p>"}
        for k in range(n)
    ])  # fmt: skip


def test_shape_counts_what_a_model_reads():
    shape = catalogue_shape(small_catalogue())
    assert shape["located"] == 1.0  # two points and a postcode
    assert shape["needs_listed"] == 1.0
    assert shape["timetabled"] == 0.0
    assert shape["costed"] == pytest.approx(1 / 3)
    sparse = catalogue_shape(_sparse())
    assert sparse == {"located": 0.0, "needs_listed": 0.0, "timetabled": 0.0, "costed": 0.0}


def test_unlike_names_each_share_outside_the_trained_range():
    ranges = shape_range(
        [
            {"located": 0.9, "needs_listed": 0.8, "timetabled": 0.9, "costed": 0.9},
            {"located": 0.3, "needs_listed": 0.4, "timetabled": 0.5, "costed": 0.4},
        ]
    )
    assert ranges["located"] == [0.3, 0.9]
    inside = {"located": 0.5, "needs_listed": 0.5, "timetabled": 0.5, "costed": 0.35}
    assert unlike(inside, ranges) == []  # 0.35 is within the slack of 0.4
    outside = dict(inside, located=0.05, timetabled=1.0)
    reasons = unlike(outside, ranges)
    assert len(reasons) == 1 and "5% of its activities have a location" in reasons[0]
    assert unlike(outside, None) == []  # a model that recorded no ranges is not judged


def _stacked_model(tmp_path):
    from matcher.scoring import save_model

    X, y = data()
    fitted = fit(X[:2000], y[:2000], X[2000:], y[2000:])
    card = {
        **CARD,
        "catalogue_shapes": {
            "located": [0.8, 1.0],
            "needs_listed": [0.7, 1.0],
            "timetabled": [0.0, 1.0],
            "costed": [0.0, 1.0],
        },
    }
    return save_model(fitted.booster, EVIDENCE, card, tmp_path, "stacked",
                      reference=reference(), stack=fitted.stack), fitted  # fmt: skip


def test_a_model_fitted_on_the_prior_saves_loads_and_predicts_its_blend(tmp_path):
    folder, fitted = _stacked_model(tmp_path)
    scorer = load_model(folder)
    X = np.nan_to_num(data()[0][:50])
    prior = ColdStartScorer().log_odds(X)
    trees = fitted.booster.decision_function(np.column_stack([X, prior]))
    expected = 1 / (1 + np.exp(-(fitted.stack[0] + fitted.stack[1] * prior
                                 + fitted.stack[2] * trees)))  # fmt: skip
    np.testing.assert_allclose(scorer.predict(X), expected, rtol=1e-9)
    # Contributions explain the served score's own log-odds.
    c = scorer.contributions(X[:3])
    assert c.shape == (3, X.shape[1]) and np.isfinite(c).all()


def test_a_stacked_model_file_with_malformed_weights_is_refused(tmp_path):
    import skops.io as sio

    from matcher.errors import ModelError
    from matcher.scoring import MODEL_FILE

    folder, _ = _stacked_model(tmp_path)
    from matcher.scoring import TRUSTED_TYPES

    payload = sio.loads((folder / MODEL_FILE).read_bytes(), trusted=list(TRUSTED_TYPES))
    payload["stack"] = np.array([0.0, np.inf, 1.0])
    from scoring_support import forge

    bad = forge(tmp_path / "bad", payload)
    with pytest.raises(ModelError, match="prior weights"):
        load_model(bad)


def test_suited_hands_an_unlike_catalogue_to_the_cold_start_scorer(tmp_path):
    folder, _ = _stacked_model(tmp_path)
    scorer = load_model(folder)
    chosen, note = suited(scorer, _sparse())
    assert isinstance(chosen, ColdStartScorer)
    assert "unlike those model stacked was trained on" in note and "cold-start" in note
    chosen, note = suited(scorer, small_catalogue())
    assert chosen is scorer and note is None
    update_card(folder, catalogue_shapes=None)
    assert suited(load_model(folder), _sparse())[1] is None


def test_rank_says_which_scorer_it_uses_and_why(tmp_path, capsys):
    folder, _ = _stacked_model(tmp_path)
    catalogue = tmp_path / "feed.json"
    catalogue.write_text(json.dumps([
        {"id": f"a{k}", "name": f"Walking group {k}", "description": "<p>Walks</p>",
         "online": True} for k in range(5)
    ]))  # fmt: skip
    profiles = tmp_path / "people.jsonl"
    profiles.write_text(json.dumps({"id": "p1", "interests": ["walking"]}) + "\n")
    code = cli.main(["rank", "--catalogue", str(catalogue), "--model", str(folder),
                     "--profiles", str(profiles), "--top", "3"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "so the cold-start scorer ranks it" in captured.err
    assert json.loads(captured.out.splitlines()[0])["matches"]
