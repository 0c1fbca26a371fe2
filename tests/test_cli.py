"""The emimpute command line, run in-process (main(argv)) and once as a
module, on CSV and Parquet files."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emimpute import EMImputer, MNARSelectionImputer
from emimpute.cli import main
from emimpute.datasets import load_airquality


@pytest.fixture
def air_csv(tmp_path):
    data = load_airquality()
    data["station"] = "Roosevelt Island"  # non-numeric: passed through
    path = tmp_path / "air.csv"
    data.to_csv(path, index=False)
    return path


def test_diagnose_prints_patterns_and_little(air_csv, capsys):
    assert main(["diagnose", str(air_csv)]) == 0
    out = capsys.readouterr().out
    assert "chi-square = 35.1062, df = 14" in out and "n_missing" in out


def test_fit_then_chunked_transform_equals_in_memory_imputation(air_csv, tmp_path):
    model, out = tmp_path / "model.json", tmp_path / "out.csv"
    assert main(["fit", str(air_csv), "--model", str(model)]) == 0
    assert json.loads(model.read_text())["format"] == "emimpute-model"
    assert main(["transform", str(model), str(air_csv), "-o", str(out),
                 "--chunksize", "40"]) == 0  # fmt: skip
    result = pd.read_csv(out)
    data = pd.read_csv(air_csv)
    numeric = data.columns[:-1]
    expected = EMImputer().fit(data[numeric]).transform(data[numeric])
    # The same fit (same data, same code, same machine) chunked or not: an
    # identity up to the rounding of the rows' products, not two fits.
    np.testing.assert_allclose(result[numeric].to_numpy(), expected, rtol=1e-12)
    assert (result["station"] == "Roosevelt Island").all()
    assert list(result.columns) == list(data.columns)


def test_selection_model_survives_the_model_file(air_csv, tmp_path):
    model, via_file, direct = (tmp_path / n for n in ("m.json", "a.csv", "b.csv"))
    fit_args = ["--method", "mnar", "--mnar-features", "Ozone"]
    assert main(["fit", str(air_csv), "--model", str(model), *fit_args]) == 0
    assert main(["transform", str(model), str(air_csv), "-o", str(via_file)]) == 0
    assert main(["impute", str(air_csv), "-o", str(direct), *fit_args]) == 0
    a, b = pd.read_csv(via_file), pd.read_csv(direct)
    pd.testing.assert_frame_equal(a, b)
    data = pd.read_csv(air_csv)
    in_memory = MNARSelectionImputer(mnar_features=["Ozone"]).fit(data.iloc[:, :-1])
    expected = in_memory.transform(data.iloc[:, :-1])
    np.testing.assert_allclose(a.iloc[:, :-1].to_numpy(), expected, rtol=1e-12)


def test_link_flag_and_its_deprecated_spelling(air_csv, tmp_path, capsys):
    from emimpute._model_io import load_model

    model = tmp_path / "m.json"
    base = ["fit", str(air_csv), "--model", str(model), "--method", "mnar"]
    for flag in (["--link", "logit"], ["--selection", "logit"], ["--selection=logit"]):
        assert main([*base, "--mnar-features", "Ozone", *flag]) == 0
        err = capsys.readouterr().err
        assert ("--selection is deprecated; use --link" in err) == (flag[0] != "--link")
        assert load_model(model).get_params()["link"] == "logit"


def test_a_registered_model_joins_the_command_line(air_csv, tmp_path, capsys,
                                                   monkeypatch):  # fmt: skip
    # A new model registers itself and declares its flags: nothing to edit
    # in the command line.
    from emimpute.imputers import _registry

    class ToyImputer(EMImputer):
        fitted_with = []

        @classmethod
        def _cli_options(cls, group):
            group.add_argument("--toy-tol", type=float, help="its tolerance")

        @classmethod
        def _params_from_cli(cls, args):
            return {} if args.toy_tol is None else {"tol": args.toy_tol}

        def fit(self, X, y=None):
            type(self).fitted_with.append((self.tol, self.max_iter))
            return super().fit(X, y)

    class OtherToyImputer(ToyImputer):  # declares the same flag
        pass

    for name, cls in (("toy", ToyImputer), ("other", OtherToyImputer)):
        entry = _registry.ImputerEntry(name, cls, "a model for this test")
        monkeypatch.setitem(_registry._REGISTRY, name, entry)
    with pytest.raises(SystemExit):
        main(["impute", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "toy: ToyImputer, a model for this test" in help_text
    assert "--toy-tol" in help_text
    out = tmp_path / "o.csv"
    argv = ["impute", str(air_csv), "-o", str(out), "--method", "toy"]
    assert main([*argv, "--toy-tol", "1e-3", "--max-iter", "40"]) == 0
    assert ToyImputer.fitted_with == [(1e-3, 40)]
    assert not pd.read_csv(out).isna().any().any()
    # Its flag with another method: the usage error names the method.
    with pytest.raises(SystemExit) as stop:
        main([*argv[:-1], "em", "--toy-tol", "1e-3"])
    assert stop.value.code == 2
    # A flag two models declare is one flag, valid with either.
    assert "--toy-tol needs --method other or --method toy" in capsys.readouterr().err


def test_parquet_in_and_out(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs the parquet extra")
    data = load_airquality()
    source, model, out = (tmp_path / n for n in ("air.parquet", "m.json", "o.parquet"))
    data.to_parquet(source)
    assert main(["fit", str(source), "--model", str(model)]) == 0
    assert main(["transform", str(model), str(source), "-o", str(out),
                 "--chunksize", "50"]) == 0  # fmt: skip
    result = pd.read_parquet(out)
    assert result.shape == data.shape and not result.isna().any().any()


def test_errors_are_one_line_with_exit_status_1(air_csv, tmp_path, capsys):
    model = tmp_path / "model.json"
    assert main(["fit", str(air_csv), "--model", str(model)]) == 0
    capsys.readouterr()
    cases = [
        (["transform", str(model), str(tmp_path / "nope.csv"), "-o", "x.csv"],
         "no such file"),
        (["transform", str(air_csv), str(air_csv), "-o", "x.csv"],
         "is not an emimpute model file"),
    ]  # fmt: skip
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, 3.0]}).to_csv(
        other, index=False
    )
    cases.append((["transform", str(model), str(other), "-o", "x.csv"],
                  "fitted on other columns"))  # fmt: skip
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\xff\xfe binary \x00")
    cases.append((["diagnose", str(garbage)], "cannot read"))
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_help_and_module_entry_point():
    run = subprocess.run([sys.executable, "-m", "emimpute.cli", "--help"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0
    assert "Non-numeric columns" in run.stdout and "transform" in run.stdout
    with pytest.raises(SystemExit) as stop:
        main(["fit"])  # missing arguments: argparse's usage error
    assert stop.value.code == 2


# --- issue 12: the command line never destroys data -------------------------


def _small_csv(path, n=150, seed=0):
    """Numeric data with holes in x (rows 0, 7, 14, ...), a text column and a
    bool column; fast to fit."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {
            "id": np.arange(n),  # int, complete: must stay int
            "x": z[:, 0] + 0.5 * z[:, 1],
            "y": z[:, 1],
            "label": np.where(z[:, 1] > 0, "up", "down"),
            "flag": z[:, 0] > 0,
        }
    )
    frame.loc[::7, "x"] = np.nan
    frame.to_csv(path, index=False)
    return frame


def test_output_equal_to_input_is_refused_unless_forced(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.csv"
    _small_csv(data)
    before = data.read_bytes()
    model = tmp_path / "m.json"
    assert main(["fit", str(data), "--model", str(model)]) == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.csv").symlink_to(data)
    capsys.readouterr()
    same = [str(data), "d.csv", "./sub/../d.csv", "link.csv"]
    (tmp_path / "sub").mkdir()
    for out in same:
        assert main(["impute", "d.csv", "-o", out]) == 1
        err = capsys.readouterr().err
        assert "--force" in err and err.count("\n") == 1, err
        assert main(["transform", "m.json", str(data), "-o", out]) == 1
        capsys.readouterr()
    assert main(["fit", "d.csv", "--model", "link.csv"]) == 1
    assert data.read_bytes() == before


def test_forced_in_place_chunked_transform_ends_and_replaces_the_input(tmp_path):
    """It used to read what it wrote and never end (878 MB)."""
    data, model = tmp_path / "d.csv", tmp_path / "m.json"
    frame = _small_csv(data)
    assert main(["fit", str(data), "--model", str(model)]) == 0
    expected = (
        EMImputer().fit(frame[["id", "x", "y"]]).transform(frame[["id", "x", "y"]])
    )
    argv = [
        "transform",
        str(model),
        str(data),
        "-o",
        str(data),
        "--chunksize",
        "50",
        "--force",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "emimpute.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = pd.read_csv(data)
    assert len(result) == len(frame)
    np.testing.assert_allclose(result[["id", "x", "y"]], expected, rtol=1e-12)
    assert {p.name for p in tmp_path.iterdir()} == {"d.csv", "m.json"}  # no leftovers


def test_failure_on_a_later_chunk_leaves_no_partial_output(tmp_path, capsys):
    data, model, out = tmp_path / "d.csv", tmp_path / "m.json", tmp_path / "out.csv"
    _small_csv(data)
    assert main(["fit", str(data), "--model", str(model)]) == 0
    lines = data.read_text().splitlines()
    # Row 120 (chunk 3 of 50) gets a token that is not a number in column y.
    fields = lines[121].split(",")
    fields[2] = "oops"
    lines[121] = ",".join(fields)
    data.write_text("\n".join(lines) + "\n")
    out.write_text("precious\n")
    capsys.readouterr()
    argv = ["transform", str(model), str(data), "-o", str(out), "--chunksize", "50"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "'y'" in err and "'oops'" in err and err.count("\n") == 1, err
    assert out.read_text() == "precious\n"
    assert {p.name for p in tmp_path.iterdir()} == {"d.csv", "m.json", "out.csv"}
    fresh = tmp_path / "fresh.csv"
    assert main([*argv[:4], str(fresh), *argv[5:]]) == 1
    assert not fresh.exists()


# --- one-line errors --------------------------------------------------------


def _one_line_error(capsys, argv, message, status=1):
    capsys.readouterr()
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_all_missing_numeric_column_is_a_one_line_error(tmp_path, capsys):
    data = tmp_path / "d.csv"
    frame = _small_csv(data)
    frame["blank"] = np.nan
    frame.to_csv(data, index=False)
    for command in (
        ["impute", str(data), "-o", str(tmp_path / "o.csv")],
        ["fit", str(data), "--model", str(tmp_path / "m.json")],
    ):
        _one_line_error(capsys, command, "'blank'")
    # --pass-through keeps it as it is.
    out = tmp_path / "o.csv"
    assert main(["impute", str(data), "-o", str(out), "--pass-through", "blank"]) == 0
    result = pd.read_csv(out)
    assert result["blank"].isna().all() and not result["x"].isna().any()


def test_bad_output_and_model_paths_are_one_line_errors(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _small_csv(data)
    model = tmp_path / "m.json"
    assert main(["fit", str(data), "--model", str(model)]) == 0
    nowhere = tmp_path / "no" / "such" / "o.csv"
    folder = tmp_path / "folder"
    folder.mkdir()
    for out, message in ((nowhere, "does not exist"), (folder, "is a folder")):
        _one_line_error(capsys, ["impute", str(data), "-o", str(out)], message)
        _one_line_error(capsys, ["fit", str(data), "--model", str(out)], message)
        _one_line_error(
            capsys, ["transform", str(model), str(data), "-o", str(out)], message
        )
    _one_line_error(
        capsys, ["transform", str(folder), str(data), "-o", "x.csv"], "is a folder"
    )
    assert not nowhere.parent.exists()


def test_bad_model_files_are_one_line_errors(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _small_csv(data)
    model = tmp_path / "m.json"
    assert main(["fit", str(data), "--model", str(model)]) == 0
    good = json.loads(model.read_text())
    for change, message in (
        (lambda s: s.pop("mean_"), "'mean_' is missing"),
        (lambda s: s["params"].update(colour=1), "colour"),
    ):
        state = json.loads(json.dumps(good))
        change(state)
        model.write_text(json.dumps(state))
        _one_line_error(
            capsys, ["transform", str(model), str(data), "-o", "o.csv"], message
        )


def test_semicolon_files_are_sniffed_or_given_with_sep(tmp_path, capsys):
    air = load_airquality()
    path = tmp_path / "air.csv"
    air.to_csv(path, index=False, sep=";")
    assert main(["diagnose", str(path)]) == 0
    captured = capsys.readouterr()
    assert "chi-square = 35.1062, df = 14" in captured.out
    assert "';'" in captured.err  # says what it used
    assert main(["diagnose", str(path), "--sep", ";"]) == 0
    out = tmp_path / "o.csv"
    assert main(["impute", str(path), "-o", str(out)]) == 0
    result = pd.read_csv(out, sep=";")  # written as it was read
    assert list(result.columns) == list(air.columns) and not result.isna().any().any()
    # Forcing the wrong separator: no numeric column, one line.
    _one_line_error(capsys, ["diagnose", str(path), "--sep", ","], "no numeric column")
    # A decimal comma is named, not read as text.
    air.to_csv(path, index=False, sep=";", decimal=",")
    _one_line_error(
        capsys, ["impute", str(path), "-o", str(out), "--sep", ";"], "--decimal ','"
    )
    assert main(["impute", str(path), "-o", str(out), "--decimal", ","]) == 0
    result = pd.read_csv(out, sep=";", decimal=",")
    np.testing.assert_array_equal(result[["Wind", "Temp"]], air[["Wind", "Temp"]])


def test_version_and_usage_errors(capsys):
    from emimpute import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"emimpute {__version__}"
    for argv in (
        ["impute", "d.csv", "-o", "o.csv", "--mnar-features", "x"],
        ["fit", "d.csv", "--model", "m.json", "--selection", "logit"],
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        assert "--method mnar" in capsys.readouterr().err


def test_random_state_seeds_the_draws_and_chunks_draw_afresh(tmp_path):
    block = pd.DataFrame(
        {"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [2.0, np.nan, 3.5, 4.0, 6.5]}
    )
    data = tmp_path / "d.csv"
    pd.concat([block] * 4, ignore_index=True).to_csv(data, index=False)
    outs = [tmp_path / f"o{i}.csv" for i in range(3)]
    for out, seed in zip(outs, ["1", "1", "2"], strict=True):
        argv = [
            "impute",
            str(data),
            "-o",
            str(out),
            "--sample-posterior",
            "--random-state",
            seed,
        ]
        assert main(argv) == 0
    a, b, c = (pd.read_csv(o) for o in outs)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    model, chunked = tmp_path / "m.json", tmp_path / "chunked.csv"
    argv = ["fit", str(data), "--model", str(model), "--sample-posterior"]
    assert main(argv) == 0
    argv = [
        "transform",
        str(model),
        str(data),
        "-o",
        str(chunked),
        "--chunksize",
        "5",
        "--random-state",
        "3",
    ]
    assert main(argv) == 0
    draws = pd.read_csv(chunked)["a"].to_numpy()[2::5]  # the same cell, 4 chunks
    assert len(set(draws)) == 4, draws  # one seed per chunk, not one reused


# --- no silent wrong results --------------------------------------------------


def test_a_token_in_a_numeric_column_is_an_error_or_a_missing_value(tmp_path, capsys):
    air = load_airquality()
    lines = air.to_csv(index=False).splitlines()
    assert lines[1].startswith("41.0,")
    lines[1] = "?" + lines[1][4:]  # Ozone of the first row
    path = tmp_path / "air.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.csv"
    _one_line_error(capsys, ["impute", str(path), "-o", str(out)], "'Ozone'")
    assert not out.exists()
    assert main(["impute", str(path), "-o", str(out), "--na-values", "?"]) == 0
    result = pd.read_csv(out)
    assert result["Ozone"].dtype == np.float64 and not result.isna().any().any()


def test_bool_text_and_complete_int_columns_keep_their_values_and_types(
    tmp_path, capsys
):
    data = tmp_path / "d.csv"
    frame = _small_csv(data)
    out = tmp_path / "o.csv"
    assert main(["impute", str(data), "-o", str(out)]) == 0
    result = pd.read_csv(out)
    assert result["flag"].dtype == bool and (result["flag"] == frame["flag"]).all()
    assert result["id"].dtype == np.int64 and (result["id"] == frame["id"]).all()
    assert (result["label"] == frame["label"]).all()
    # The model saw only the numeric columns (bool is not numeric for it).
    model = tmp_path / "m.json"
    assert main(["fit", str(data), "--model", str(model)]) == 0
    assert json.loads(model.read_text())["feature_names_in_"] == ["id", "x", "y"]
    # The summary on stderr: one line, every column.
    capsys.readouterr()
    assert main(["impute", str(data), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "x: imputed 22 cells" in err
    for column in ("id", "y", "label", "flag"):
        assert f"{column}: " in err


def test_parquet_keeps_bool_and_int_types(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs the parquet extra")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "n": np.arange(60),
            "x": rng.normal(size=60),
            "y": rng.normal(size=60),
            "flag": rng.random(60) > 0.5,
        }
    )
    frame.loc[::5, "x"] = np.nan
    source, model, out = (tmp_path / n for n in ("d.parquet", "m.json", "o.parquet"))
    frame.to_parquet(source)
    assert main(["impute", str(source), "-o", str(out)]) == 0
    result = pd.read_parquet(out)
    assert result["flag"].dtype == bool and result["n"].dtype == np.int64
    assert main(["fit", str(source), "--model", str(model)]) == 0
    assert (
        main(["transform", str(model), str(source), "-o", str(out), "--chunksize", "7"])
        == 0
    )
    result = pd.read_parquet(out)
    assert result["flag"].dtype == bool and not result["x"].isna().any()
    assert (result["flag"] == frame["flag"]).all()


def test_a_header_only_file_gives_a_header_only_output(tmp_path):
    data, model, out = tmp_path / "d.csv", tmp_path / "m.json", tmp_path / "o.csv"
    frame = _small_csv(data)
    assert main(["fit", str(data), "--model", str(model)]) == 0
    data.write_text(",".join(frame.columns) + "\n")
    assert main(["transform", str(model), str(data), "-o", str(out)]) == 0
    assert out.read_text().splitlines() == [",".join(frame.columns)]


def test_copula_kinds_and_detection_limits_on_the_command_line(air_csv, tmp_path):
    # Month as a nominal column (five summer months), Ozone censored at 10:
    # its values at or below 10 are imputed below 10, the others kept.
    out = tmp_path / "o.csv"
    argv = ["impute", str(air_csv), "-o", str(out), "--method", "copula",
            "--kinds", "Month=nominal", "--detection-limits", "Ozone=10",
            "--random-state", "0"]  # fmt: skip
    assert main(argv) == 0
    air, imputed = pd.read_csv(air_csv), pd.read_csv(out)
    assert not imputed[["Ozone", "Solar.R"]].isna().any().any()
    assert set(imputed["Month"]) <= set(air["Month"])
    low = air["Ozone"] <= 10
    assert (imputed.loc[low, "Ozone"] < 10).all()
    high = air["Ozone"] > 10
    pd.testing.assert_series_equal(imputed.loc[high, "Ozone"], air.loc[high, "Ozone"])
    model = tmp_path / "m.json"
    assert main(["fit", str(air_csv), "--model", str(model), "--method", "copula",
                 "--kinds", "Month=nominal", "--random-state", "0"]) == 0  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main([*argv[:-2], "--kinds", "Month"])
    assert stop.value.code == 2
