"""`inferwatch profile` and `inferwatch drift`, run in-process on real files, and the HTML report.

Data files are written with pandas into tmp_path (Parquet through pyarrow, CSV, JSON lines);
profiles are the real binary files the command saves.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inferwatch.cli import commands as cli
from inferwatch.drift import Profile, compare
from inferwatch.drift.profile import MAGIC
from inferwatch.drift.report import TABLE_COLUMNS, render_html, table_rows
from tests.test_cli import _console_script

Capsys = pytest.CaptureFixture[str]
COUNTRIES = np.array(["de", "fr", "us", "br"], dtype=object)


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def frame(seed: int, n: int = 3000, shift: float = 0.0, new_country: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = rng.choice(COUNTRIES, n, p=[0.4, 0.3, 0.2, 0.1])
    if new_country:
        country[: n // 5] = "jp"
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, n),
            "amount": rng.exponential(50.0, n),
            "country": country,
            "zip": rng.integers(0, 6, n),  # codes: categorical only when asked
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A baseline Parquet file, an unchanged and a drifted current window as CSV."""
    paths = {
        "base": tmp_path / "base.parquet",
        "same": tmp_path / "same.csv",
        "drifted": tmp_path / "drifted.csv",
    }
    frame(1).to_parquet(paths["base"])
    frame(10).to_csv(paths["same"], index=False)  # every p-value above 0.5 against frame(1)
    frame(3, shift=4.0, new_country=True).to_csv(paths["drifted"], index=False)
    return paths


def baseline_profile(capsys: Capsys, files: dict[str, Path], *extra: str) -> Path:
    out = files["base"].with_suffix(".iwp")
    code, _, err = run(capsys, "profile", str(files["base"]), "-o", str(out), *extra)
    assert code == 0, err
    return out


# ---- profile ------------------------------------------------------------------------------------
def test_profile_saves_what_the_library_builds(files: dict[str, Path], capsys: Capsys) -> None:
    out = files["base"].with_suffix(".iwp")
    code, stdout, err = run(capsys, "profile", str(files["base"]), "-o", str(out))
    assert code == 0 and err == ""
    assert out.read_bytes()[: len(MAGIC)] == MAGIC
    saved = Profile.load(out)
    built = Profile.build(pd.read_parquet(files["base"]))
    for name, col in built.columns.items():  # exact statistics agree (KLL compaction is random)
        assert saved.columns[name].to_dict() == col.to_dict()
    df = frame(1)
    assert saved.n_rows == len(df) and list(saved.columns) == list(df.columns)
    assert saved.columns["age"].min == df["age"].min()
    assert saved.columns["country"].counts() == df["country"].value_counts().to_dict()
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["column", "┃", "kind"]
    assert any(line.split()[0] == "country" and "categorical" in line for line in lines[2:])
    assert f"note: wrote {out}" in stdout and "3000 rows, 4 columns" in stdout


def test_profile_merges_files_of_every_format(tmp_path: Path, capsys: Capsys) -> None:
    df = frame(5, n=4000)
    parts = [df.iloc[:1000], df.iloc[1000:2000], df.iloc[2000:3000], df.iloc[3000:]]
    paths = [tmp_path / p for p in ("a.parquet", "b.csv.gz", "c.jsonl", "d.json")]
    parts[0].to_parquet(paths[0])
    parts[1].to_csv(paths[1], index=False)
    parts[2].to_json(paths[2], orient="records", lines=True)
    parts[3].to_json(paths[3], orient="records")  # a JSON array, not lines
    code, out, err = run(capsys, "profile", *map(str, paths), "--format", "json")
    assert code == 0, err
    rows = {r["column"]: r for r in json.loads(out)}
    assert {r["count"] for r in rows.values()} == {4000}
    # pandas writes JSON floats with 10 significant digits
    assert rows["age"]["min"] == pytest.approx(df["age"].min(), rel=1e-9)
    assert rows["age"]["max"] == pytest.approx(df["age"].max(), rel=1e-9)
    assert rows["age"]["mean"] == pytest.approx(df["age"].mean(), rel=1e-9)
    assert rows["country"]["distinct"] == 4 and rows["zip"]["kind"] == "numeric"
    assert "note: 4,000 rows, 4 columns" in err  # notes go to stderr with --format json


def test_profile_columns_categorical_and_saved_profiles(
    files: dict[str, Path], tmp_path: Path, capsys: Capsys
) -> None:
    first = tmp_path / "first.iwp"
    argv = ["profile", str(files["base"]), "--columns", "zip,age", "--categorical", "zip"]
    code, _, err = run(capsys, *argv, "-o", str(first))
    assert code == 0, err
    profile = Profile.load(first)
    assert list(profile.columns) == ["zip", "age"]
    assert profile.columns["zip"].kind == "categorical"
    assert profile.columns["zip"].counts() == {
        str(k): v for k, v in frame(1)["zip"].value_counts().items()
    }
    # A saved profile merges with more data: one profile of both windows.
    both = tmp_path / "both.iwp"
    argv = ["profile", str(first), str(files["same"]), "--columns", "zip,age"]
    code, out, err = run(capsys, *argv, "--categorical", "zip", "-o", str(both), "--format", "csv")
    assert code == 0, err
    rows = {r["column"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["age"]["count"] == "6000" and rows["zip"]["kind"] == "categorical"
    assert Profile.load(both).n_rows == 6000


# ---- drift --------------------------------------------------------------------------------------
def test_drift_table_verdict_and_fail_on_drift(files: dict[str, Path], capsys: Capsys) -> None:
    base = baseline_profile(capsys, files, "--categorical", "zip")
    code, out, err = run(capsys, "drift", str(base), str(files["drifted"]))
    assert code == 0 and err == ""
    rows = {  # a long note goes on to lines of its own, which start with a border
        line.split()[0]: line
        for line in out.splitlines()[2:]
        if "│" in line and line.split()[0] != "│"
    }
    assert set(rows) == {"age", "amount", "country", "zip"}
    assert "DRIFT" in rows["age"] and "DRIFT" in rows["country"]
    assert "DRIFT" not in rows["amount"] and "DRIFT" not in rows["zip"]
    assert "unseen categories in current" in rows["country"]
    # zip was profiled as categories: the CSV's integer codes are read the same way.
    assert "chi2" in rows["zip"] and "type changed" not in out
    verdict = "note: drifted: age, country, the 2 numeric features together (4 of 4 features "
    assert verdict + "tested and the numeric ones together, Benjamini–Hochberg" in out
    assert "note: multivariate (2 numeric features together): DRIFT, mmd p=" in out

    code, _, _ = run(capsys, "drift", str(base), str(files["drifted"]), "--fail-on-drift")
    assert code == 1
    code, out, _ = run(capsys, "drift", str(base), str(files["same"]), "--fail-on-drift")
    assert code == 0 and "note: no drift (4 of 4 features tested" in out
    assert "note: multivariate (2 numeric features together): no drift" in out


def test_drift_json_is_the_library_report(files: dict[str, Path], capsys: Capsys) -> None:
    base = baseline_profile(capsys, files)
    cur = files["drifted"].with_suffix(".iwp")
    assert run(capsys, "profile", str(files["drifted"]), "-o", str(cur))[0] == 0
    argv = ["drift", str(base), str(cur), "--format", "json", "--alpha", "0.01"]
    code, out, err = run(capsys, *argv)
    assert code == 0
    got = json.loads(out)
    expected = compare(Profile.load(base), Profile.load(cur), alpha=0.01)
    assert got["alpha"] == 0.01 and got["drifted"] is True
    assert got["drifted_columns"] == expected.drifted_columns == ["age", "country"]
    for name, col in expected.columns.items():
        assert got["columns"][name]["p_value"] == col.p_value
        assert got["columns"][name]["p_adjusted"] == col.p_adjusted
    assert got["columns"]["country"]["unseen"] == ["jp"]
    assert err.startswith("note: drifted: age, country")


def test_drift_csv_and_min_effect(files: dict[str, Path], capsys: Capsys) -> None:
    argv = ["drift", str(files["base"]), str(files["drifted"]), "--format", "csv"]
    code, out, _ = run(capsys, *argv, "--min-effect", "5", "--fail-on-drift")
    assert code == 0  # significant, but no effect reaches 5: no drift
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(TABLE_COLUMNS)
    by_name = {r["column"]: r for r in rows}
    assert by_name["age"]["drifted"] == "False"
    assert "significant but effect" in by_name["age"]["note"]
    assert float(by_name["age"]["p_adjusted"]) < 0.05


def test_bad_data_becomes_notes_in_table_and_html(tmp_path: Path, capsys: Capsys) -> None:
    rng = np.random.default_rng(11)
    n = 500
    base = pd.DataFrame(
        {
            "only_base": rng.normal(size=n),
            "all_nan": rng.normal(size=n),
            "const": np.full(n, 3.0),
            "mixed": rng.choice(["a", "b"], n).astype(object),
            "tags": [["x", "y"]] * n,  # nested JSON: counted as its JSON text
        }
    )
    mixed = rng.choice(["a", "b"], n).astype(object)
    mixed[::2] = 1
    cur = pd.DataFrame(
        {
            "only_cur": rng.normal(size=n),
            "all_nan": np.full(n, np.nan),
            "const": np.full(n, 3.0),
            "mixed": mixed,
            "tags": [["x", "y"]] * n,
        }
    )
    base.to_json(tmp_path / "base.jsonl", orient="records", lines=True)
    cur.to_json(tmp_path / "cur.jsonl", orient="records", lines=True)
    report = tmp_path / "report.html"
    argv = ["drift", str(tmp_path / "base.jsonl"), str(tmp_path / "cur.jsonl")]
    code, out, err = run(capsys, *argv, "--html", str(report))
    assert code == 0, err
    notes = {
        "only_base": "column missing from current",
        "only_cur": "column missing from baseline",
        "all_nan": "all 500 values are null/NaN/inf in current",
        "const": "constant in baseline (3); constant in current (3)",
        "mixed": "mixed types in current (int, str), compared as str",
    }
    page = report.read_text(encoding="utf-8")
    for column, note in notes.items():
        (line,) = [row for row in out.splitlines() if row.split()[:1] == [column]]
        assert note in line
        assert note in page
    # a column that became all NaN is a finding: its null share is tested
    assert "note: drifted: all_nan, mixed" in out
    assert page.count("<svg") == 6  # a feature on one side only is plotted for that side
    assert "tags" in out and "DRIFT" not in out.split("tags")[1].splitlines()[0]

    empty = tmp_path / "empty.csv"
    empty.write_text("const,mixed\n")
    code, out, err = run(capsys, "drift", str(tmp_path / "base.jsonl"), str(empty))
    assert code == 0, err
    assert "current window is empty" in out and "note: no drift" in out


# ---- HTML report --------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Every element and attribute of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


HOSTILE_COLUMN = "<script>alert('col')</script> \"q\" naïve 中文"
HOSTILE_CATEGORY = '<img src=x onerror=alert(1)> & "$x$"'
HOSTILE_FILE = "cur <b onmouseover='alert(2)'>"


def test_html_report_is_offline_and_escapes_user_strings(tmp_path: Path, capsys: Capsys) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    base = pd.DataFrame({HOSTILE_COLUMN: rng.normal(size=n), "cat": rng.choice(["a", "b", "c"], n)})
    cur_cat = rng.choice(["a", "b", "c"], n).astype(object)
    cur_cat[:300] = HOSTILE_CATEGORY
    cur = pd.DataFrame({HOSTILE_COLUMN: rng.normal(0.5, 1, n), "cat": cur_cat})
    base.to_parquet(tmp_path / "base.parquet")
    current = tmp_path / f"{HOSTILE_FILE}.parquet"
    cur.to_parquet(current)
    report = tmp_path / "report.html"
    argv = ["drift", str(tmp_path / "base.parquet"), str(current)]
    code, out, err = run(capsys, *argv, "--html", str(report))
    assert code == 0, err
    assert f"note: wrote {report}" in out
    raw = report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(raw)
    allowed = {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "dl", "dt"}
    allowed |= {"dd", "section", "h2", "table", "thead", "tr", "th", "tbody", "td", "a", "h3"}
    allowed |= {"span", "article", "div", "footer", "svg", "defs", "g", "path", "use", "text"}
    allowed |= {"clippath", "pattern", "rect"}  # SVG: clipping and hatching
    assert set(page.tags) <= allowed, set(page.tags) - allowed
    assert page.tags.count("svg") == 2 and page.tags.count("article") == 2
    for name, value in page.attributes:
        assert not name.startswith("on") and name != "src"
        if name in ("href", "xlink:href"):
            assert value.startswith("#"), value
    csp = [v for k, v in page.attributes if k == "content" and "default-src" in v]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]
    text = "".join(page.text)
    assert HOSTILE_COLUMN in text  # shown, as text
    assert HOSTILE_CATEGORY in text  # in the plot's labels and the list of new categories
    assert f"{HOSTILE_FILE}.parquet" in text
    for hostile in (HOSTILE_COLUMN, HOSTILE_CATEGORY, HOSTILE_FILE):
        assert hostile not in raw  # never unescaped in the markup
    assert raw.count('class="flag">DRIFT') == 4  # two rows of the table, two headings


def test_report_notes_profiles_of_other_versions(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    base = Profile.build({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    cur = Profile.build({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    cur.format_version = 0
    report = compare(base, cur)
    page = render_html(report, base, cur, labels=("v1.iwp", "v0.iwp"))
    note = "profiles have different format versions (2 vs 0); rebuild them"
    assert page.count(f'<p class="note">{note}</p>') == 2
    assert [r["note"] for r in table_rows(report)] == [note, note]
    assert not report.drifted and "no drift (0 of 2 features tested" in page


# ---- errors -------------------------------------------------------------------------------------
def _write_bad_files(tmp_path: Path) -> None:
    (tmp_path / "garbage.parquet").write_bytes(b"this is not parquet at all")
    (tmp_path / "garbage.iwp").write_bytes(b"not a profile")
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{"a": \n')
    blob = bytearray(Profile.build({"a": [1.0, 2.0]}).to_bytes())
    blob[len(MAGIC)] = 3  # format version 3
    (tmp_path / "future.iwp").write_bytes(bytes(blob))
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "ok.csv", index=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift", "missing.iwp", "ok.csv"], "no such file: "),
        (["drift", "ok.csv", "dir.csv"], "dir.csv is a directory"),
        (["drift", "ok.csv", "data.txt"], "data.txt: unknown format (use .parquet"),
        (["drift", "ok.csv", "garbage.parquet"], "cannot read "),
        (["drift", "garbage.iwp", "ok.csv"], "is not an inferwatch profile"),
        (["drift", "future.iwp", "ok.csv"], "format version 3 is not supported"),
        (["profile", "broken.jsonl"], "broken.jsonl as jsonl"),
        (["profile", "ok.csv", "--columns", "nope"], "no column 'nope'"),
        (["profile", "ok.csv", "-o", "no/such/dir/out.iwp"], "cannot write "),
        (["profile", "ok.csv", "--kll-k", "4"], "must be between 8 and 65535"),
        (["profile"], "the following arguments are required: DATA"),
        (["drift", "ok.csv", "ok.csv", "--alpha", "0"], "must be between 0 and 1"),
        (["drift", "ok.csv", "ok.csv", "--alpha", "1.5"], "must be between 0 and 1"),
        (["drift", "ok.csv", "ok.csv", "--min-effect", "-1"], "must be at least 0"),
        (["drift", "ok.csv", "ok.csv", "--columns", "zz"], "--columns: 'zz' in neither side"),
        (["drift", "ok.csv"], "the following arguments are required: CURRENT"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _write_bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("inferwatch: error: ") and message in err, err


@pytest.mark.parametrize(
    ("modules", "argv", "message"),
    [
        (["matplotlib"], ["--html", "r.html"], "the HTML report needs matplotlib: pip install"),
        (["pyarrow", "pyarrow.parquet"], [], "pyarrow is not installed: pip install"),
        (["pandas"], [], "pandas is not installed: pip install"),
    ],
)
def test_missing_optional_dependency_is_exit_2(
    modules: list[str],
    argv: list[str],
    message: str,
    files: dict[str, Path],
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files["base"].parent)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # what `import name` sees when absent
    code, out, err = run(capsys, "drift", str(files["base"]), str(files["drifted"]), *argv)
    assert code == 2 and out == ""
    assert err.startswith("inferwatch: error: ") and message in err
    assert not (files["base"].parent / "r.html").exists()


def test_help_lists_every_command(capsys: Capsys) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("slice", "bubble-up", "outliers", "profile", "drift"))
    assert cli.main(["drift", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--fail-on-drift" in text and "--html REPORT.html" in text


def test_console_script_profile_then_drift(files: dict[str, Path], tmp_path: Path) -> None:
    script = _console_script()

    def call(*argv: str) -> subprocess.CompletedProcess[str]:
        env: dict[str, Any] = {**os.environ}
        return subprocess.run([script, *argv], capture_output=True, text=True, env=env, timeout=120)

    base = tmp_path / "baseline.iwp"
    done = call("profile", str(files["base"]), "-o", str(base))
    assert done.returncode == 0, done.stderr
    report = tmp_path / "report.html"
    done = call("drift", str(base), str(files["drifted"]), "--html", str(report), "--fail-on-drift")
    assert done.returncode == 1, done.stderr
    assert "note: drifted: age, country" in done.stdout and done.stderr == ""
    # one plot per feature, and one for the numeric features together
    assert report.read_text(encoding="utf-8").count("<svg") == 5
    done = call("drift", str(base), str(tmp_path / "nope.parquet"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
