"""The ``emimpute`` command line: diagnose, fit, transform and impute files.

Examples::

    emimpute diagnose data.csv
    emimpute fit data.csv --model model.json --method mnar --mnar-features income
    emimpute transform model.json big.csv -o imputed.csv --chunksize 100000
    emimpute impute data.csv -o imputed.csv

CSV files are read and written with pandas; Parquet too when ``pyarrow`` is
installed (``pip install "emimpute[parquet]"``).  A CSV file's separator is
sniffed unless ``--sep`` gives it, and the output uses the same one.

Columns.  The model is fitted on the numeric columns and only they are
imputed; text, true/false and ``--pass-through`` columns are passed through
untouched, with their types.  A column that is numeric except for a few
tokens (a ``?``) is an error naming the column and the tokens, unless
``--na-values`` declares them missing; a numeric column with no observed
value is an error.  One line on standard error says what happened to each
column.

Safety.  Output is written to a temporary file in the output's folder and
renamed only once complete, so a failure leaves no partial file and an
existing file untouched; an output that is the input file is refused unless
``--force``.  Models are saved as standard JSON (``emimpute/_model_io.py``),
never with pickle, so loading a model file cannot run code, and are checked
on loading.  Errors print one line to standard error and exit with status 1
(2 for bad usage); warnings print one line each.
"""

import argparse
import sys
import warnings

import numpy as np
import pandas as pd

import emimpute  # noqa: F401  (the imputers register themselves on import)
from emimpute import __version__
from emimpute._cli_files import (
    CommandError,
    atomic,
    check_output,
    chunk_seeds,
    column_summary,
    impute_frame,
    note,
    plan_columns,
    read_chunks,
    read_table,
    resolve_separator,
    write_stream,
)
from emimpute._model_io import load_model, save_model
from emimpute.diagnostics import little_mcar_test, missing_patterns
from emimpute.imputers._registry import registered_imputers

# --- the models --------------------------------------------------------------

# Flags every model may take, passed to an estimator that has the parameter.
SHARED_FLAGS = {
    "ridge": "--ridge",
    "max_iter": "--max-iter",
    "sample_posterior": "--sample-posterior",
    "random_state": "--random-state",
}
_FLAG_DEFAULTS = {
    "ridge": 0.0,
    "max_iter": 500,
    "sample_posterior": False,
    "random_state": None,
}
# Old spellings of flags: still read, with a note saying the new one.
DEPRECATED_FLAGS = {"--selection": "--link"}


def _methods():
    """``--method`` name -> :class:`ImputerEntry`, every registered imputer."""
    return {entry.name: entry for entry in registered_imputers()}


def _imputer(entry, args):
    """The estimator of ``--method``, with the shared flags it takes and its
    own (its ``_params_from_cli``)."""
    cls = entry.estimator
    accepted = cls().get_params(deep=False)
    params = {}
    for name, flag in SHARED_FLAGS.items():
        value = getattr(args, name)
        if name in accepted:
            params[name] = value
        elif value != _FLAG_DEFAULTS[name]:
            raise CommandError(f"{flag} does not apply to --method {entry.name}")
    params.update(cls._params_from_cli(args))
    return cls(**params)


def _fit(frame, model, args):
    if not model:
        raise CommandError(
            "no numeric column to impute (read with separator "
            f"{args.sep!r}; --sep sets another)"
        )
    imputer = _imputer(_methods()[args.method], args)
    try:
        return imputer.fit(frame[model].astype(np.float64))
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None


# --- commands ----------------------------------------------------------------


def command_diagnose(args):
    args.sep = resolve_separator(args.data, args)
    frame = read_table(args.data, args)
    model, _ = plan_columns(frame, args)
    if not model:
        raise CommandError(
            f"no numeric column in {args.data} (read with separator {args.sep!r}; "
            "--sep sets another)"
        )
    numeric = frame[model].astype(np.float64)
    try:
        patterns = missing_patterns(numeric).round(3).to_string()
        little = little_mcar_test(numeric)
    except ValueError as error:
        raise CommandError(str(error)) from None
    with pd.option_context("display.width", 120, "display.max_columns", 50):
        print(patterns)
    print()
    print(little)


def command_fit(args):
    check_output(args.model, "model file", data=args.data, force=None)
    args.sep = resolve_separator(args.data, args)
    frame = read_table(args.data, args)
    model, reasons = plan_columns(frame, args)
    imputer = _fit(frame, model, args)
    try:
        with atomic(args.model) as temporary:
            save_model(imputer, temporary)
    except OSError as error:
        raise CommandError(
            f"cannot write {args.model}: {error.strerror or error}"
        ) from None
    note(column_summary(frame, model, reasons, {}))
    state = "converged" if imputer.converged_ else "did NOT converge"
    print(f"fitted {type(imputer).__name__} ({state}, {imputer.n_iter_} iterations); "
          f"model written to {args.model}")  # fmt: skip


def command_transform(args):
    check_output(args.output, "output", data=args.data, force=args.force,
                  model=args.model)  # fmt: skip
    try:
        imputer = load_model(args.model)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    sep = resolve_separator(args.data, args)
    args.sep = sep
    seeds = chunk_seeds(imputer, args.random_state)
    if seeds is None and args.random_state is not None:
        imputer.set_params(random_state=args.random_state)
    counts, first = {}, []

    def imputed_chunks():
        for chunk in read_chunks(args.data, args):
            if not first:
                first.append(chunk)
            if seeds is not None:
                imputer.set_params(random_state=next(seeds))
            yield impute_frame(imputer, chunk, args, counts, uniform=True)

    rows = write_stream(imputed_chunks(), args.output, sep, args,
                         progress=sys.stderr.isatty())  # fmt: skip
    if first:
        names = [str(c) for c in imputer.feature_names_in_]
        reasons = {
            c: "passed through (true/false)"
            if pd.api.types.is_bool_dtype(first[0][c])
            else "passed through (not in the model)"
            for c in first[0].columns
            if str(c) not in names
        }
        note(column_summary(first[0], names, reasons, counts, imputer, uniform=True))
    print(f"{rows:,} rows written to {args.output}")


def command_impute(args):
    check_output(args.output, "output", data=args.data, force=args.force)
    args.sep = resolve_separator(args.data, args)
    frame = read_table(args.data, args)
    model, reasons = plan_columns(frame, args)
    imputer = _fit(frame, model, args)
    counts = {}
    out = impute_frame(imputer, frame, args, counts, uniform=False)
    rows = write_stream([out], args.output, args.sep, args, progress=False)
    note(column_summary(frame, model, reasons, counts, imputer))
    print(f"{rows:,} rows written to {args.output}")


# --- the parser ----------------------------------------------------------------


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _read_options(parser):
    parser.add_argument("--sep", help="CSV column separator (default: sniffed)")
    parser.add_argument("--decimal", default=".", help="CSV decimal mark (default .)")
    parser.add_argument(
        "--na-values",
        help="comma-separated extra tokens read as missing (e.g. '?,-'); "
        "empty cells and NA, NaN, null... are missing already",
    )


def _column_options(parser):
    parser.add_argument(
        "--pass-through",
        help="comma-separated columns left as they are and not modelled",
    )


def _fit_options(parser):
    methods = _methods()
    described = "; ".join(
        f"{name}: {entry.estimator.__name__}, {entry.description}"
        for name, entry in methods.items()
    )
    parser.add_argument(
        "--method",
        choices=list(methods),
        default="em",
        help=f"the imputation model (default em). {described}".replace("%", "%%"),
    )
    parser.add_argument(
        "--ridge",
        type=float,
        default=_FLAG_DEFAULTS["ridge"],
        help="ridge prior in pseudo-observations (default 0: MLE)",
    )
    parser.add_argument(
        "--max-iter", type=_positive_int, default=_FLAG_DEFAULTS["max_iter"]
    )
    parser.add_argument(
        "--sample-posterior",
        action="store_true",
        help="draw each missing cell from its conditional distribution "
        "instead of imputing its mean",
    )
    _random_state_option(parser)
    owners = {}
    for name, entry in methods.items():
        group = _ModelFlags(
            parser.add_argument_group(f"--method {name} ({entry.estimator.__name__})"),
            name,
            owners,
        )
        entry.estimator._cli_options(group)
    parser.set_defaults(model_flags=owners)


class _ModelFlags:
    """The argument group a model adds its own flags to (its
    ``_cli_options``): notes which methods each flag belongs to, for the
    usage check, and adds a flag that two models share only once (the first
    model's definition)."""

    def __init__(self, group, method, owners):
        self._group, self._method, self._owners = group, method, owners

    def add_argument(self, *flags, **kwargs):
        for action, methods in self._owners.values():
            if set(flags) & set(action.option_strings):
                methods.add(self._method)
                return action
        action = self._group.add_argument(*flags, **kwargs)
        self._owners[action.dest] = (action, {self._method})
        return action

    def __getattr__(self, name):
        return getattr(self._group, name)


def _random_state_option(parser):
    parser.add_argument(
        "--random-state",
        type=int,
        default=_FLAG_DEFAULTS["random_state"],
        help="seed of the draws (--sample-posterior), for reproducible output",
    )


def _force_option(parser):
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow the output to replace the input file",
    )


def build_parser():
    """The argument parser of the ``emimpute`` command."""
    parser = argparse.ArgumentParser(
        prog="emimpute",
        description="EM imputation of CSV or Parquet files. Non-numeric columns "
        "are passed through untouched; models are saved as JSON, never pickle.",
    )
    parser.add_argument(
        "--version", action="version", version=f"emimpute {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    diagnose = commands.add_parser("diagnose", help="pattern table and Little's test")
    diagnose.add_argument("data")
    _read_options(diagnose)
    _column_options(diagnose)
    diagnose.set_defaults(run=command_diagnose)
    fit = commands.add_parser("fit", help="fit an imputer and save it")
    fit.add_argument("data")
    fit.add_argument("--model", required=True, help="where to write the model (JSON)")
    _read_options(fit)
    _column_options(fit)
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
        type=_positive_int,
        default=100_000,
        help="rows read and imputed at a time (memory bound)",
    )
    _read_options(transform)
    _random_state_option(transform)
    _force_option(transform)
    transform.set_defaults(run=command_transform)
    impute = commands.add_parser("impute", help="fit and transform in one go")
    impute.add_argument("data")
    impute.add_argument("-o", "--output", required=True)
    _read_options(impute)
    _column_options(impute)
    _fit_options(impute)
    _force_option(impute)
    impute.set_defaults(run=command_impute)
    return parser


def _check_usage(parser, args):
    """A model's own flags need its ``--method`` (argparse cannot say so)."""
    for action, methods in getattr(args, "model_flags", {}).values():
        given = getattr(args, action.dest) != action.default
        if given and args.method not in methods:
            needed = " or ".join(f"--method {name}" for name in sorted(methods))
            parser.error(f"{action.option_strings[0]} needs {needed}")


def _modern_flags(argv):
    """``argv`` with deprecated flags replaced by their new names, a note
    for each."""
    out = []
    for token in argv:
        old, sep, value = token.partition("=")
        if old in DEPRECATED_FLAGS:
            new = DEPRECATED_FLAGS[old]
            note(f"{old} is deprecated; use {new}")
            token = new + sep + value
        out.append(token)
    return out


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"emimpute: warning: {message}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``emimpute`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_modern_flags(argv))
    _check_usage(parser, args)
    with warnings.catch_warnings():
        # Library warnings (convergence, automatic ridge) as one line each,
        # without the source line Python would print under them.
        warnings.simplefilter("default")
        warnings.showwarning = _one_line_warning
        try:
            args.run(args)
        except CommandError as error:
            print(f"emimpute {args.command}: error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
