"""The ``emimpute`` command line: diagnose, fit, transform and impute files.

Examples::

    emimpute diagnose data.csv
    emimpute fit data.csv --model model.json --method mnar --mnar-features income
    emimpute transform model.json big.csv -o imputed.csv --chunksize 100000
    emimpute impute data.csv -o imputed.csv

CSV files are read and written with pandas; Parquet too when ``pyarrow`` is
installed (``pip install "emimpute[parquet]"``).  Non-numeric columns are
passed through untouched: the model is fitted on the numeric columns and
only they are imputed.  Models are saved as JSON (``emimpute/_model_io.py``),
never with pickle, so loading a model file cannot run code.  Errors print
one line to standard error and exit with status 1 (2 for bad usage).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from emimpute import EMImputer, MNARSelectionImputer
from emimpute._model_io import load_model, save_model
from emimpute.diagnostics import little_mcar_test, missing_patterns


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _read(path, **kwargs):
    path = Path(path)
    if not path.exists():
        raise CommandError(f"no such file: {path}")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, **kwargs)
    except ImportError as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None


def _numeric_columns(frame):
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]


def _fit(frame, args):
    numeric = _numeric_columns(frame)
    if not numeric:
        raise CommandError("no numeric column to impute")
    if args.method == "em":
        imputer = EMImputer(ridge=args.ridge, max_iter=args.max_iter)
    else:
        features = args.mnar_features.split(",") if args.mnar_features else None
        imputer = MNARSelectionImputer(
            mnar_features=features, selection=args.selection, ridge=args.ridge,
            max_iter=args.max_iter,
        )  # fmt: skip
    try:
        return imputer.fit(frame[numeric])
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None


def _impute_frame(imputer, frame):
    names = [str(c) for c in imputer.feature_names_in_]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise CommandError(
            f"the model was fitted on other columns: {', '.join(missing)} "
            "missing from the input"
        )
    out = frame.copy()
    try:
        values = imputer.transform(frame[names])
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    out[names] = np.asarray(values)
    return out


def _chunks(path, chunksize):
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as error:
            raise CommandError(f"cannot read {path}: {error}") from None
        if not path.exists():
            raise CommandError(f"no such file: {path}")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize):
            yield batch.to_pandas()
        return
    reader = _read(path, chunksize=chunksize)
    try:
        yield from reader
    except (ValueError, pd.errors.ParserError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None


def _write_stream(frames, output, progress):
    """Write chunks one after another (memory: one chunk at a time)."""
    output = Path(output)
    rows = 0
    writer = None
    try:
        for i, frame in enumerate(frames):
            if output.suffix == ".parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(output, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(output, mode="w" if i == 0 else "a", header=i == 0,
                             index=False)  # fmt: skip
            rows += len(frame)
            if progress:
                sys.stderr.write(f"\r{rows:,} rows imputed")
                sys.stderr.flush()
    finally:
        if writer is not None:
            writer.close()
    if progress:
        sys.stderr.write("\n")
    return rows


def command_diagnose(args):
    frame = _read(args.data)
    numeric = frame[_numeric_columns(frame)]
    with pd.option_context("display.width", 120, "display.max_columns", 50):
        print(missing_patterns(numeric).round(3).to_string())
    print()
    try:
        print(little_mcar_test(numeric))
    except ValueError as error:
        raise CommandError(str(error)) from None


def command_fit(args):
    imputer = _fit(_read(args.data), args)
    save_model(imputer, args.model)
    state = "converged" if imputer.converged_ else "did NOT converge"
    print(f"fitted {type(imputer).__name__} ({state}, {imputer.n_iter_} iterations); "
          f"model written to {args.model}")  # fmt: skip


def command_transform(args):
    try:
        imputer = load_model(args.model)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    frames = (
        _impute_frame(imputer, chunk) for chunk in _chunks(args.data, args.chunksize)
    )
    rows = _write_stream(frames, args.output, progress=sys.stderr.isatty())
    print(f"{rows:,} rows written to {args.output}")


def command_impute(args):
    frame = _read(args.data)
    imputer = _fit(frame, args)
    rows = _write_stream([_impute_frame(imputer, frame)], args.output, progress=False)
    print(f"{rows:,} rows written to {args.output}")


def _fit_options(parser):
    parser.add_argument(
        "--method",
        choices=["em", "mnar"],
        default="em",
        help="EMImputer (MAR, default) or MNARSelectionImputer",
    )
    parser.add_argument(
        "--mnar-features",
        help="comma-separated columns with a "
        "missingness model (--method mnar; default: all incomplete)",
    )
    parser.add_argument("--selection", choices=["probit", "logit"], default="probit")
    parser.add_argument(
        "--ridge",
        type=float,
        default=0.0,
        help="ridge prior in pseudo-observations (default 0: MLE)",
    )
    parser.add_argument("--max-iter", type=int, default=500)  # fmt: skip


def build_parser():
    parser = argparse.ArgumentParser(
        prog="emimpute",
        description="EM imputation of CSV or Parquet files. Non-numeric columns "
        "are passed through untouched; models are saved as JSON, never pickle.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    diagnose = commands.add_parser("diagnose", help="pattern table and Little's test")
    diagnose.add_argument("data")
    diagnose.set_defaults(run=command_diagnose)
    fit = commands.add_parser("fit", help="fit an imputer and save it")
    fit.add_argument("data")
    fit.add_argument("--model", required=True, help="where to write the model (JSON)")
    _fit_options(fit)
    fit.set_defaults(run=command_fit)
    transform = commands.add_parser(
        "transform", help="impute a file with a saved model, chunk by chunk"
    )
    transform.add_argument("model")
    transform.add_argument("data")
    transform.add_argument("-o", "--output", required=True)
    transform.add_argument(
        "--chunksize",
        type=int,
        default=100_000,
        help="rows read and imputed at a time (memory bound)",
    )
    transform.set_defaults(run=command_transform)
    impute = commands.add_parser("impute", help="fit and transform in one go")
    impute.add_argument("data")
    impute.add_argument("-o", "--output", required=True)
    _fit_options(impute)
    impute.set_defaults(run=command_impute)
    return parser


def main(argv=None):
    """Entry point of the ``emimpute`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except CommandError as error:
        print(f"emimpute {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
