"""Feature validation: schema construction, each rule on each input form, vectorised counts."""

from __future__ import annotations

import math
import operator
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from inferwatch.drift.profile import Profile
from inferwatch.validation import Feature, Relation, Schema, SchemaViolationError, Violations

SCHEMA = Schema(
    features=(
        Feature(name="price", dtype="number", min=0, max=100, nullable=False),
        Feature(name="qty", dtype="integer", min=1),
        Feature(name="flag", dtype="bool"),
        Feature(name="size", allowed={"1", "2", "3"}),
        Feature(name="code", dtype="string", pattern=r"[A-Z]{2}\d"),
        Feature(name="lo"),
        Feature(name="hi"),
    ),
    relations=(Relation(left="lo", op="<=", right="hi"),),
)
NAMES = ["price", "qty", "flag", "size", "code", "lo", "hi"]
GOOD = {"price": 10.0, "qty": 2, "flag": True, "size": 2, "code": "AB1", "lo": 1.0, "hi": 2.0}


def forms(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The same rows as every supported input form (numeric-only rows also as an ndarray)."""
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    out: dict[str, Any] = {"records": rows, "columns": cols, "frame": pd.DataFrame(cols)}
    out["columns_np"] = {  # mixed columns as objects: numpy would turn 1.0 into "1.0"
        k: np.asarray(v) if len({type(e) for e in v}) == 1 else np.array(v, dtype=object)
        for k, v in cols.items()
    }
    if len(rows) == 1:
        out["row"] = rows[0]
    return out


def check_all(schema: Schema, rows: list[dict[str, Any]]) -> dict[str, Violations]:
    return {name: schema.check(x) for name, x in forms(rows).items()}


def test_valid_rows_pass_everywhere() -> None:
    for name, v in check_all(SCHEMA, [GOOD, GOOD]).items():
        assert (v.total, v.rows, v.unsupported) == (0, 0, 0), name
        assert v.attributes() == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"price": None}, ("price", "missing")),
        ({"price": math.nan}, ("price", "missing")),
        ({"price": -1.0}, ("price", "min")),
        ({"price": 101.0}, ("price", "max")),
        ({"price": "10"}, ("price", "dtype")),
        ({"qty": 2.5}, ("qty", "dtype")),
        ({"qty": 0}, ("qty", "min")),
        ({"flag": "yes"}, ("flag", "dtype")),
        ({"size": 4}, ("size", "allowed")),
        ({"code": "ab1"}, ("code", "pattern")),
        ({"code": 12}, ("code", "dtype")),
        ({"lo": 3.0}, ("lo<=hi", "relation")),
    ],
)
def test_each_rule_each_form(change: dict[str, Any], expected: tuple[str, str]) -> None:
    bad = {**GOOD, **change}
    results = check_all(SCHEMA, [GOOD, bad, GOOD])
    results.update({f"one-{k}": v for k, v in check_all(SCHEMA, [bad]).items()})
    big = [GOOD] * 5 + [bad] + [GOOD] * 6  # past the small-batch path: numpy per rule
    results.update({f"big-{k}": v for k, v in check_all(SCHEMA, big).items()})
    for name, v in results.items():
        extra = {k: n for k, n in v.counts.items() if k != expected}
        if expected == ("code", "pattern") or change.get("code") == 12:
            extra.pop(("code", "pattern"), None)  # 12 is not a string and not a code either
        assert v.counts.get(expected) == 1, (name, v)
        assert not extra, (name, v)
        assert v.rows == 1 and v.unsupported == 0, (name, v)
        assert v.attributes() == {"ml.input.violations": v.total}


def test_ndarray_with_feature_names() -> None:
    schema = Schema(
        features=(
            Feature(name="a", min=0, max=1, nullable=False),
            Feature(name="b", dtype="integer", allowed={"1", "2"}),
            Feature(name="c", pattern=r"\d"),
        ),
        relations=("a < b",),
    )
    x = np.array([[0.5, 1, 3], [np.nan, 2, 4], [2.0, 1.5, 10], [0.1, 0, 1]])
    v = schema.check(x, ["a", "b", "c"])
    assert v.counts == {
        ("a", "missing"): 1,
        ("a", "max"): 1,
        ("b", "dtype"): 1,
        ("b", "allowed"): 2,
        ("c", "pattern"): 1,
        ("a<b", "relation"): 2,
    }
    assert (v.rows, v.n, v.total) == (3, 4, 8)
    big = schema.check(np.tile(x, (5, 1)), ["a", "b", "c"])  # vectorised path, same result
    assert big.counts == {k: 5 * c for k, c in v.counts.items()} and big.rows == 15
    one = schema.check(x[2], ["a", "b", "c"])  # a 1-D row with names
    assert one.rows == 1 and one.n == 1 and one.counts[("a", "max")] == 1
    ints = schema.check(np.array([[1, 1, 1]]), ["a", "b", "c"])
    assert ints.counts == {("a<b", "relation"): 1}
    # columns of the input not in the schema are ignored; order follows the names
    assert schema.check(np.array([[9.0, 1.0, 0.5]]), ["z", "b", "a"]).total == 0


def test_absent_features() -> None:
    v = SCHEMA.check({"qty": 1})
    assert v.counts == {("price", "missing"): 1} and v.rows == 1
    v = SCHEMA.check(pd.DataFrame({"qty": [1, 2, 3]}))
    assert v.counts == {("price", "missing"): 3} and v.rows == 3


def test_nullable_extension_and_object_columns() -> None:
    frame = pd.DataFrame(
        {
            "price": pd.array([1, None, 200], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "code": pd.Series(["AB1", None, "zz"], dtype="string"),
            "size": pd.Categorical(["1", "2", "9"]),
        }
    )
    v = SCHEMA.check(frame)
    assert v.counts == {
        ("price", "missing"): 1,
        ("price", "max"): 1,
        ("code", "pattern"): 1,
        ("size", "allowed"): 1,
    }
    assert v.rows == 2


def test_relations_parse_and_ops() -> None:
    assert Relation.model_validate("min_price <= max_price") == Relation(
        left="min_price", op="<=", right="max_price"
    )
    ops = {"<": operator.lt, "<=": operator.le, "==": operator.eq}
    ops.update({"!=": operator.ne, ">=": operator.ge, ">": operator.gt})
    a = np.array([1.0, 2.0, 3.0, np.nan])
    b = np.array([2.0, 2.0, 2.0, 1.0])
    for op, fn in ops.items():
        schema = Schema(features=(Feature(name="a"), Feature(name="b")), relations=(f"a{op}b",))
        expected = sum(not fn(x, y) for x, y in zip(a[:3], b[:3], strict=True))
        for x in ({"a": a, "b": b}, np.column_stack([a, b])):
            v = schema.check(x, ["a", "b"])
            assert v.counts.get((f"a{op}b", "relation"), 0) == expected, (op, v)
        rows = [{"a": x, "b": y} for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        assert schema.check(rows).total == expected
    # non-numbers on either side are skipped
    schema = Schema(features=(Feature(name="a"), Feature(name="b")), relations=("a<b",))
    assert schema.check({"a": "x", "b": 1}).total == 0


def test_from_profile_round_trip() -> None:
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 10, size=n),
            "cat": rng.choice(["a", "b", "c"], size=n),
            "ok": rng.random(n) < 0.5,
            "y": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        }
    )
    schema = Schema.from_profile(Profile.build(frame))
    assert schema.feature("k").dtype == "integer" and schema.feature("x").dtype == "number"
    assert schema.feature("cat").allowed == {"a", "b", "c"}
    assert schema.feature("ok").dtype == "bool" and schema.feature("ok").allowed == {
        "True",
        "False",
    }
    assert schema.feature("y").nullable and not schema.feature("x").nullable
    assert schema.check(frame).total == 0
    assert schema.check(frame.to_dict("records")).total == 0
    assert schema.check({c: frame[c].to_numpy() for c in frame}).total == 0
    numeric = frame[["x", "k", "y"]].to_numpy()
    v = schema.check(numeric, ["x", "k", "y"])  # cat and ok are absent: missing everywhere
    assert v.counts == {("cat", "missing"): n, ("ok", "missing"): n}

    bad = frame.iloc[:3].copy()
    bad.loc[0, "x"] = frame["x"].max() + 1
    bad.loc[1, "cat"] = "d"
    bad.loc[2, "x"] = np.nan
    v = schema.check(bad)
    assert v.counts == {("x", "max"): 1, ("cat", "allowed"): 1, ("x", "missing"): 1}

    wide = Schema.from_profile(Profile.build(frame), slack=0.5)
    assert wide.check(bad.iloc[:1]).total == 0

    edited = schema.with_feature("cat", allowed=None, pattern="[a-d]").with_feature("new", min=0)
    assert edited.check(bad).counts == {("x", "max"): 1, ("x", "missing"): 1}
    assert edited.feature("new").min == 0
    assert schema.feature("cat").allowed == {"a", "b", "c"}  # the original is unchanged


def reference(schema: Schema, x: np.ndarray, names: list[str]) -> tuple[Counter[Any], int]:
    """Plain Python, row by row, numbers only."""
    counts: Counter[Any] = Counter()
    bad_rows = 0
    feats = {f.name: f for f in schema.features}
    for row in x.tolist():
        values = dict(zip(names, row, strict=True))
        broken = []
        for name, f in feats.items():
            v = values[name]
            if math.isnan(v):
                if not f.nullable:
                    broken.append((name, "missing"))
                continue
            if f.dtype == "integer" and v != int(v):
                broken.append((name, "dtype"))
            if f.min is not None and v < f.min:
                broken.append((name, "min"))
            if f.max is not None and v > f.max:
                broken.append((name, "max"))
            if f.allowed is not None and str(int(v)) not in f.allowed:
                broken.append((name, "allowed"))
        for rel in schema.relations:
            a, b = values[rel.left], values[rel.right]
            if not (math.isnan(a) or math.isnan(b)) and not a <= b:
                broken.append((rel.label, "relation"))
        counts.update(broken)
        bad_rows += bool(broken)
    return counts, bad_rows


def test_batch_counts_match_reference() -> None:
    rng = np.random.default_rng(1)
    n, width = 10_000, 8
    names = [f"f{i}" for i in range(width)]
    x = rng.normal(size=(n, width)) * 2
    x[rng.random((n, width)) < 0.01] = np.nan
    x[:, 3] = np.round(x[:, 3])
    x[rng.random(n) < 0.02, 3] += 0.5
    x[:, 4] = rng.integers(0, 6, size=n)
    schema = Schema(
        features=(
            Feature(name="f0", min=-3, max=3),
            Feature(name="f1", min=-1, nullable=False),
            Feature(name="f2", max=2.5, nullable=False),
            Feature(name="f3", dtype="integer"),
            Feature(name="f4", allowed={"0", "1", "2", "3"}),
            *(Feature(name=f) for f in names[5:]),
        ),
        relations=(Relation(left="f5", op="<=", right="f6"),),
    )
    counts, rows = reference(schema, x, names)
    for data in (x, np.asfortranarray(x), pd.DataFrame(x, columns=names)):
        v = schema.check(data, names)
        assert Counter(v.counts) == counts
        assert v.rows == rows and v.n == n
    cols = {name: x[:, i] for i, name in enumerate(names)}
    v = schema.check(cols)
    assert Counter(v.counts) == counts and v.rows == rows


@pytest.mark.parametrize(
    "x",
    [
        None,
        42,
        "text",
        b"bytes",
        object(),
        [1, [2, 3]],
        np.zeros((2, 3, 4)),
        np.array([[1, 2]]),  # no feature names
        {"price": object(), "code": [1, 2], "qty": {"a": 1}},
        [{"price": 1.0}, "not a row", None],
        {"price": np.array([[1.0]]), "qty": [1]},
        pd.Series([1, 2]),
        pd.Index([1, 2]),
        np.array([["AB1", "x"]], dtype=object),
        [{"price": pd.NA, "qty": pd.NaT, "code": b"AB1", "flag": np.bool_(True)}],
        {"price": 1e400, "qty": 2**70, "lo": complex(1, 2), "hi": 1},
    ],
)
def test_bad_inputs_never_raise(x: Any) -> None:
    v = SCHEMA.check(x, ["price", "code"])
    assert isinstance(v, Violations)
    assert isinstance(v.attributes(), dict)


def test_unsupported_inputs_are_counted() -> None:
    assert SCHEMA.check(object()).unsupported == 1
    assert SCHEMA.check(np.array([[1.0, 2.0]])).unsupported == 1
    v = SCHEMA.check([{**GOOD}, "not a row", 3])
    assert (v.unsupported, v.n, v.total) == (2, 1, 0)
    assert SCHEMA.check([]).n == 0


def test_strict_mode_raises_on_request() -> None:
    SCHEMA.check(GOOD).raise_if_any()
    v = SCHEMA.check({**GOOD, "price": -5})
    with pytest.raises(SchemaViolationError, match="price/min=1"):
        v.raise_if_any()
    assert v.metric_points() == [(1, {"ml.feature": "price", "ml.validation.rule": "min"})]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Feature(name="a", pattern="(unclosed"),
        lambda: Feature(name="a", min=2, max=1),
        lambda: Feature(name="a", min=math.nan),
        lambda: Feature(name="a", dtype="float"),
        lambda: Feature(name="a", nullable=True, typo=1),
        lambda: Feature(name=""),
        lambda: Relation(left="a", op="=>", right="b"),
        lambda: Relation.model_validate("a ~ b"),
        lambda: Schema(features=(Feature(name="a"), Feature(name="a"))),
        lambda: Schema(features=(Feature(name="a"),), relations=("a <= b",)),
        lambda: SCHEMA.with_feature("price", min=200),
        lambda: SCHEMA.with_feature("code", pattern="[z-a]"),
    ],
)
def test_invalid_schemas_raise(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        SCHEMA.features[0].min = 5  # type: ignore[misc]
    assert hash(SCHEMA.features[0]) == hash(SCHEMA.features[0].model_copy())


ROW_SCHEMA = Schema(
    features=(
        Feature(name="x", dtype="number", min=-1, max=1, nullable=False),
        Feature(name="k", dtype="integer", allowed={"0", "1", "2", "7"}),
        Feature(name="b", dtype="bool"),
        Feature(name="s", dtype="string", pattern=r"[a-c]\d", nullable=False),
        Feature(name="p", pattern=r"\d"),
        Feature(name="lo", max=0.5),
        Feature(name="hi"),
    ),
    relations=("lo <= hi",),
)


def _messy_value(rng: np.random.Generator, name: str) -> Any:
    """A value for feature `name`: usually a fitting one, sometimes any odd thing."""
    odd = [None, math.nan, math.inf, -math.inf, "1.5", "abc", "a1", True, False, np.bool_(True),
           np.float32(0.25), np.int64(7), 3, 2**70, pd.NA, [1], {"a": 1}, 1.0, 7.0, 0.5 + 1e-9,
           b"a1", complex(1, 0)]  # fmt: skip
    if rng.random() < 0.15:
        return odd[rng.integers(len(odd))]
    if name == "s":
        return str(rng.choice(["a1", "b2", "c3", "d4"]))
    if name == "b":
        return bool(rng.random() < 0.5)
    if name == "k":
        return int(rng.integers(0, 9))
    return float(rng.normal(0, 0.8))


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element by element: a list value stays one value
        out[i] = v
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [3, 9, 300])
def test_batches_count_what_rows_count_one_by_one(seed: int, n: int) -> None:
    """Every batch form finds exactly the violations of checking each row on its own."""
    rng = np.random.default_rng(seed)
    names = [f.name for f in ROW_SCHEMA.features]
    rows: list[dict[Any, Any]] = []
    for _ in range(n):
        row = {name: _messy_value(rng, name) for name in names if rng.random() > 0.05}
        if rng.random() < 0.1:
            row["unknown"] = "ignored"
        rows.append(row)
    expected: Counter[Any] = Counter()
    bad_rows = 0
    for row in rows:
        one = ROW_SCHEMA.check(row)
        assert one.unsupported == 0 and one.n == 1
        expected.update(one.counts)
        bad_rows += one.rows
    assert sum(expected.values()) > 0
    columns = {name: [r.get(name) for r in rows] for name in names}
    batches = {
        "records": rows,
        "columns": columns,
        "object arrays": {k: _object_array(v) for k, v in columns.items()},
        "frame": pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()}),
    }
    for form, batch in batches.items():
        v = ROW_SCHEMA.check(batch)
        assert (v.n, v.unsupported) == (n, 0), form
        assert Counter(v.counts) == expected, form
        assert v.rows == bad_rows, form


def test_records_of_numbers_read_as_a_matrix() -> None:
    """Numeric dict rows: nulls and bounds counted; an int beyond float range is unreadable."""
    schema = Schema(features=(Feature(name="a", min=0), Feature(name="b", nullable=False)))
    rows = [{"a": float(i % 5) - 1, "b": i if i % 7 else None} for i in range(50)]
    v = schema.check(rows)
    assert v.counts == {("a", "min"): 10, ("b", "missing"): 8} and v.rows == 16
    rows[3]["a"] = 10**400  # beyond float: the rules cannot read it either
    assert schema.check(rows).unsupported == 1
    assert schema.check([{"a": 10**400}]).unsupported == 1
    keyed = [{1: -1.0, "b": 1.0}] * 20  # keys are matched by their text, as for one row
    one_feature = Schema(features=(Feature(name="1", min=0),))
    assert one_feature.check(keyed).counts == {("1", "min"): 20}
    assert one_feature.check(keyed[0]).counts == {("1", "min"): 1}
