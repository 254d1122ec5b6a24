"""Profiles and drift tests (inferwatch.drift)."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from inferwatch.drift import ColumnDrift, ColumnProfile, DriftReport, Profile, compare
from inferwatch.drift.profile import MAGIC

CATS = np.array([f"cat{i}" for i in range(50)], dtype=object)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.exponential(2.0, n),
            "c": rng.choice(CATS[:5], n),
        }
    )


# ---- profiles -----------------------------------------------------------------------------
def test_build_from_dataframe_dict_and_array_agree(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5000, 3))
    names = ["a", "b", "c"]
    from_array = Profile.build(x, columns=names)
    from_dict = Profile.build({n: x[:, i] for i, n in enumerate(names)})
    from_df = Profile.build(pd.DataFrame(x, columns=names))
    for p in (from_array, from_dict, from_df):
        assert p.n_rows == 5000 and list(p.columns) == names
        for i, n in enumerate(names):
            col = p.columns[n]
            assert isinstance(col, ColumnProfile) and col.kind == "numeric"
            assert col.count == col.n == 5000
            assert col.min == x[:, i].min() and col.max == x[:, i].max()
            assert col.mean == pytest.approx(x[:, i].mean(), rel=1e-12)
            assert col.variance == pytest.approx(x[:, i].var(), rel=1e-10)
    assert list(Profile.build(x).columns) == ["f0", "f1", "f2"]


def test_counts_nulls_infs_and_kinds() -> None:
    df = pd.DataFrame(
        {
            "num": [1.0, np.nan, np.inf, -np.inf, 5.0, None],
            "ints": pd.array([1, 2, None, 4, 5, 6], dtype="Int64"),
            "s": ["a", "b", None, "a", "a", "b"],
            "flag": [True, False, True, True, False, True],
            "cat": pd.Categorical(["u", "v", "u", "u", "v", "u"]),
            "forced": [1, 2, 1, 2, 1, 1],
        }
    )
    p = Profile.build(df, categorical=["forced"])
    num = p.columns["num"]
    assert (num.kind, num.count, num.null_count, num.inf_count, num.n) == ("numeric", 6, 2, 2, 2)
    assert (num.min, num.max, num.mean) == (1.0, 5.0, 3.0)
    assert p.columns["ints"].kind == "numeric" and p.columns["ints"].null_count == 1
    assert p.columns["s"].kind == "categorical"
    assert p.columns["s"].counts() == {"a": 3, "b": 2} and p.columns["s"].null_count == 1
    assert p.columns["flag"].counts() == {"True": 4, "False": 2}
    assert p.columns["cat"].counts() == {"u": 4, "v": 2}
    assert p.columns["forced"].kind == "categorical" and p.columns["forced"].distinct == 2
    text = str(p)
    assert "num" in text and "categorical" in text and "6 rows" in text


def test_object_numbers_are_numeric_and_mixed_types_flagged() -> None:
    p = Profile.build({"n": [1, 2.5, None, 4], "m": [1, "a", 2.5, "b"]})
    assert p.columns["n"].kind == "numeric" and p.columns["n"].null_count == 1
    assert p.columns["m"].kind == "categorical"
    assert p.columns["m"].mixed_types == ["float", "int", "str"]


def test_merge_equals_build_on_concatenation(rng: np.random.Generator) -> None:
    a, b = _frame(rng, 30_000), _frame(rng, 20_000, shift=0.5)
    merged = Profile.build(a).merge(Profile.build(b))
    whole = Profile.build(pd.concat([a, b], ignore_index=True))
    assert merged.n_rows == whole.n_rows == 50_000
    for name in ("x", "y"):
        m, w = merged.columns[name], whole.columns[name]
        assert (m.n, m.min, m.max) == (w.n, w.min, w.max)
        assert m.mean == pytest.approx(w.mean, rel=1e-12)
        assert m.variance == pytest.approx(w.variance, rel=1e-10)
        eps = 2 * m.kll.normalized_rank_error(False)
        for q in (0.01, 0.25, 0.5, 0.75, 0.99):
            # quantiles agree within the sketch's rank error
            assert abs(w.kll.get_rank(m.quantile(q)) - q) <= eps
    assert merged.columns["c"].counts() == whole.columns["c"].counts()


def test_merge_rejects_kind_mismatch_and_other_versions() -> None:
    p = Profile.build({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="numeric in one profile and categorical"):
        p.merge(Profile.build({"a": ["x", "y"]}))
    other = Profile.build({"a": [3.0]})
    other.format_version = 99
    with pytest.raises(ValueError, match="different format versions"):
        p.merge(other)


def test_save_load_round_trip(tmp_path, rng: np.random.Generator) -> None:
    p = Profile.build(_frame(rng, 10_000))
    path = tmp_path / "baseline.iwprof"
    p.save(path)
    q = Profile.load(path)
    assert q.n_rows == p.n_rows and list(q.columns) == list(p.columns)
    for name, col in p.columns.items():
        assert q.columns[name].to_dict() == col.to_dict()
    assert q.columns["x"].quantile(0.5) == p.columns["x"].quantile(0.5)
    assert q.columns["c"].counts() == p.columns["c"].counts()
    assert q.to_bytes() == p.to_bytes()


def test_from_bytes_rejects_other_versions_and_garbage() -> None:
    blob = Profile.build({"a": [1.0]}).to_bytes()
    future = MAGIC + struct.pack("<H", 3) + blob[len(MAGIC) + 2 :]
    with pytest.raises(ValueError, match="format version 3 is not supported"):
        Profile.from_bytes(future)
    with pytest.raises(ValueError, match="not an inferwatch profile"):
        Profile.from_bytes(b"hello world")


# ---- compare ------------------------------------------------------------------------------
def test_identical_distributions_do_not_drift(rng: np.random.Generator) -> None:
    report = compare(_frame(rng, 20_000), Profile.build(_frame(rng, 20_000)))
    assert isinstance(report, DriftReport) and not report.drifted
    assert report.drifted_columns == []
    x = report["x"]
    assert isinstance(x, ColumnDrift)
    assert (x.kind, x.test) == ("numeric", "ks") and x.p_value is not None and x.p_value > 0.01
    assert set(x.distances) == {"psi", "js", "wasserstein"}
    assert report["c"].test == "chi2" and set(report["c"].distances) == {"js"}
    assert "no drift" in str(report)
    assert report.to_dict()["columns"]["x"]["test"] == "ks"


def test_strong_shift_drifts(rng: np.random.Generator) -> None:
    report = compare(_frame(rng, 5000), _frame(rng, 5000, shift=0.5))
    assert report.drifted and report.drifted_columns == ["x"]
    assert report["x"].p_value is not None and report["x"].p_value < 1e-10
    assert report["x"].distances["wasserstein"] == pytest.approx(0.5, abs=0.1)
    assert report["x"].distances["psi"] > 0.1
    assert "DRIFT" in str(report)


def test_min_effect_suppresses_trivial_but_significant_shift(rng: np.random.Generator) -> None:
    base, cur = {"x": rng.normal(0, 1, 200_000)}, {"x": rng.normal(0.03, 1, 200_000)}
    assert compare(base, cur).drifted
    report = compare(base, cur, min_effect=0.1)
    assert not report.drifted and "min_effect" in (report["x"].note or "")


def test_categorical_share_shift_and_unseen(rng: np.random.Generator) -> None:
    probs = np.full(50, 1 / 50)
    shifted = probs.copy()
    shifted[0] += 0.02
    shifted /= shifted.sum()
    report = compare(
        {"c": rng.choice(CATS, 20_000, p=probs)}, {"c": rng.choice(CATS, 20_000, p=shifted)}
    )
    assert report["c"].test == "chi2" and report["c"].drifted
    assert report["c"].unseen == []

    current = np.concatenate([rng.choice(CATS[:10], 2000), ["brand-new"] * 300, ["rare"]])
    report = compare({"c": rng.choice(CATS[:10], 2000)}, {"c": current})
    assert report["c"].unseen == ["brand-new", "rare"]
    assert report["c"].drifted and "unseen" in (report["c"].note or "")


def test_bad_inputs_give_notes_not_exceptions(rng: np.random.Generator) -> None:
    n = 1000
    base = {
        "only_base": rng.normal(size=n),
        "all_nan": rng.normal(size=n),
        "const": np.full(n, 3.0),
        "kind": rng.normal(size=n),
        "mixed": rng.choice(["a", "b"], n).astype(object),
        "one_cat": np.array(["a"] * n, dtype=object),
    }
    mixed = rng.choice(["a", "b"], n).astype(object)
    mixed[::7] = 1
    cur = {
        "only_cur": rng.normal(size=n),
        "all_nan": np.full(n, np.nan),
        "const": np.full(n, 3.0),
        "kind": rng.choice(["x", "y"], n),
        "mixed": mixed,
        "one_cat": np.array(["a"] * n, dtype=object),
    }
    report = compare(base, cur)
    assert "missing from current" in report["only_base"].note
    assert "missing from baseline" in report["only_cur"].note
    assert "all 1000 values are null/NaN/inf in current" in report["all_nan"].note
    assert report["const"].p_value == 1.0 and "constant" in report["const"].note
    assert "type changed" in report["kind"].note and report["kind"].test is None
    assert "mixed types in current" in report["mixed"].note
    assert report["one_cat"].test is None and "no chi-square" in report["one_cat"].note
    # the int 1 is a new category "1"; a column that became all null is a finding
    assert report.drifted_columns == ["all_nan", "mixed"]
    assert "null share 0.0% -> 100.0%: drifted" in report["all_nan"].note
    assert report["mixed"].unseen == ["1"]

    empty = compare(pd.DataFrame({"x": []}, dtype=float), {"x": rng.normal(size=10)})
    assert "baseline window is empty" in empty["x"].note and not empty.drifted
    assert compare({}, {}).drifted_columns == []

    shifted_const = compare({"k": np.full(500, 1.0)}, {"k": np.full(500, 2.0)})
    assert shifted_const["k"].drifted

    old = Profile.build({"x": [1.0, 2.0]})
    old.format_version = 0
    versions = compare(old, {"x": [1.0, 2.0]})
    assert "different format versions" in versions["x"].note and not versions.drifted


# ---- null shares and categories ---------------------------------------------------------------
def test_a_null_share_jump_is_a_finding_not_a_note(rng: np.random.Generator) -> None:
    """The pipeline bug that looks like drift: a join starts returning nulls in 5% of rows."""
    n = 20_000
    base = {"x": rng.normal(size=n), "c": rng.choice(CATS[:5], n).astype(object)}
    x, c = rng.normal(size=n), rng.choice(CATS[:5], n).astype(object)
    x[rng.random(n) < 0.05] = np.nan
    c[rng.random(n) < 0.05] = None
    report = compare(base, {"x": x, "c": c})
    assert report.drifted_columns == ["x", "c"]
    for name in ("x", "c"):
        col = report[name]
        assert col.p_value is not None and col.p_adjusted is not None and col.p_adjusted > 0.05
        (share,) = col.shares
        assert share.test == "null_share" and share.drifted and share.baseline == 0.0
        assert share.current == pytest.approx(0.05, abs=0.01) and share.effect > 0.4
        assert "null share 0.0% -> 5." in (col.note or "") and "drifted" in (col.note or "")
    # a share that does not change is no finding, and min_effect applies to Cohen's h
    steady = rng.normal(size=n)
    steady[rng.random(n) < 0.05] = np.nan
    again = compare({"x": steady}, {"x": x})
    assert not again.drifted and not again["x"].shares[0].drifted
    assert not compare(base, {"x": x}, min_effect=0.5, columns=["x"]).drifted


def test_new_categories_beyond_chance_are_a_finding(rng: np.random.Generator) -> None:
    n = 20_000
    base = rng.choice(CATS[:20], n)
    current = rng.choice(CATS[:20], n).astype(object)
    current[: n // 20] = "UNKNOWN"  # a default value leaks into 5% of rows
    report = compare({"c": base}, {"c": current})
    col = report["c"]
    assert col.drifted and [t.test for t in col.shares] == ["cardinality"]
    assert col.shares[0].drifted and col.shares[0].current == pytest.approx(0.05)
    assert "new categories hold 5.0% of current values" in (col.note or "")
    # a rare category seen once on one side only is what sampling does
    rare = np.concatenate([rng.choice(CATS[:20], 2000), ["one-off"]])
    quiet = compare({"c": rng.choice(CATS[:20], 2000)}, {"c": rare})["c"]
    assert not quiet.drifted and quiet.shares[0].p_value > 0.05


# ---- predictions and labels ---------------------------------------------------------------
def test_predictions_and_labels_become_reserved_columns(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1000, 2))
    scores = rng.dirichlet([3, 1, 1], 1000)
    scores[:5, 1] = np.nan  # no predicted class for these rows
    labels = rng.integers(0, 3, 1000)
    p = Profile.build(
        x, columns=["a", "b"], predictions=scores, labels=labels, class_names=["u", "v", "w"]
    )
    assert list(p.columns) == ["a", "b", "ml.prediction", "ml.label"] and p.n_rows == 1000
    pred, label = p.columns["ml.prediction"], p.columns["ml.label"]
    assert (pred.kind, pred.count, pred.null_count) == ("categorical", 1000, 5)
    winners = np.argmax(scores[5:], axis=1)
    assert pred.counts() == {n: int((winners == i).sum()) for i, n in enumerate("uvw")}
    assert label.counts() == {n: int((labels == i).sum()) for i, n in enumerate("uvw")}
    assert p.class_names == ["u", "v", "w"]
    loaded = Profile.from_bytes(p.to_bytes())
    assert loaded.class_names == ["u", "v", "w"] and loaded.to_bytes() == p.to_bytes()
    assert Profile.from_bytes(Profile.build(x).to_bytes()).class_names is None


def test_how_predictions_are_read() -> None:
    values = np.array([0.5, 1.5, np.nan, 2.5])
    regression = Profile.build(predictions=values, labels=[1.0, 2.0, 2.0, 3.0])
    pred = regression.columns["ml.prediction"]
    assert (pred.kind, pred.n, pred.null_count, pred.min, pred.max) == ("numeric", 3, 1, 0.5, 2.5)
    assert regression.columns["ml.label"].kind == "numeric"
    forced = Profile.build(labels=[1.0, 0.0, 1.0, None], categorical=["ml.label"])
    assert forced.columns["ml.label"].counts() == {"1": 2, "0": 1}  # as ml.prediction.class
    assert forced.columns["ml.label"].null_count == 1
    classes = Profile.build(
        predictions=["cat", "dog", None, "cat"], labels=[True, False, True, True]
    )
    assert classes.columns["ml.prediction"].counts() == {"cat": 2, "dog": 1}
    assert classes.columns["ml.label"].counts() == {"True": 3, "False": 1}
    named = Profile.build(predictions=np.array([[0.1, 0.9], [0.8, 0.2]]), class_names=["n", "y"])
    assert named.columns["ml.prediction"].counts() == {"y": 1, "n": 1}
    one_column = Profile.build(predictions=np.array([[0.1], [0.7]]))
    assert one_column.columns["ml.prediction"].kind == "numeric"


def test_prediction_mistakes_are_configuration_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="9 predictions for 10 rows"):
        Profile.build(x, predictions=np.zeros(9))
    with pytest.raises(ValueError, match="reserved"):
        Profile.build({"ml.label": [1, 2]}, labels=[1, 2])
    with pytest.raises(TypeError, match="shape"):
        Profile.build(x, predictions=np.zeros((10, 2, 2)))
    a = Profile.build(labels=[0, 1], class_names=["n", "y"])
    with pytest.raises(ValueError, match="different class names"):
        a.merge(Profile.build(labels=[0, 1], class_names=["no", "yes"]))
    merged = a.merge(Profile.build(labels=["y", "y"]))  # labels given as names already
    assert merged.class_names == ["n", "y"]
    assert merged.columns["ml.label"].counts() == {"n": 1, "y": 3}


def test_prediction_shift_is_tested_like_a_feature(rng: np.random.Generator) -> None:
    base = Profile.build(rng.normal(size=(5000, 1)), predictions=rng.dirichlet([2, 1], 5000))
    same = Profile.build(rng.normal(size=(5000, 1)), predictions=rng.dirichlet([2, 1], 5000))
    moved = Profile.build(rng.normal(size=(5000, 1)), predictions=rng.dirichlet([1, 2], 5000))
    assert compare(base, same).drifted_columns == []
    report = compare(base, moved)
    assert report.drifted_columns == ["ml.prediction"] and report["ml.prediction"].test == "chi2"
