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
