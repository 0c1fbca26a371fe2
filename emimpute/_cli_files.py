"""Files for the ``emimpute`` command line (:mod:`emimpute.cli`): reading
CSV and Parquet whole or in chunks, deciding which columns the model sees,
imputing a table's model columns, and writing the output atomically.

Every problem a user can cause is a :class:`CommandError`: one line on
standard error, exit status 1.
"""

import contextlib
import csv
import itertools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def note(message):
    """One line on standard error, prefixed with the program's name."""
    print(f"emimpute: {message}", file=sys.stderr)


# --- reading -----------------------------------------------------------------

_SNIFF_CHARS = 64 * 1024
_SEPARATORS = ",;\t|"


def _is_parquet(path):
    return Path(path).suffix == ".parquet"


def resolve_separator(path, args):
    """``--sep``, or the separator sniffed from the first lines of the file."""
    if args.sep is not None or _is_parquet(path):
        return args.sep or ","
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as file:
            sample = file.read(_SNIFF_CHARS)
    except OSError:
        return ","  # the read that follows reports the problem
    sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=_SEPARATORS).delimiter
    except csv.Error:  # one column, or nothing to tell: the CSV default
        sep = ","
    if sep != ",":
        note(f"read {path} with separator {sep!r} (sniffed; --sep sets it)")
    return sep


def _nullable_types():
    """Arrow-to-pandas types that keep integers and booleans as they are.

    Plain ``to_pandas`` turns an integer or boolean column into float or
    object in every batch that holds a null and leaves it alone in the
    others, so chunks of one file would disagree on the column's type.
    """
    import pyarrow as pa

    mapping = {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }  # fmt: skip
    return mapping.get


def _csv_options(args):
    na_values = args.na_values.split(",") if args.na_values else None
    return {"sep": args.sep, "decimal": args.decimal, "na_values": na_values}


def _data_path(path):
    """``path`` as a Path, or a one-line error if it is no data file."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{path} is a folder, not a data file")
    if not path.exists():
        raise CommandError(f"no such file: {path}")
    return path


def read_table(path, args):
    path = _data_path(path)
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pandas(types_mapper=_nullable_types())
        return pd.read_csv(path, **_csv_options(args))
    except ImportError as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None


def read_chunks(path, args):
    path = _data_path(path)
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            types = _nullable_types()
            for batch in pq.ParquetFile(path).iter_batches(batch_size=args.chunksize):
                yield batch.to_pandas(types_mapper=types)
            return
        yield from pd.read_csv(path, chunksize=args.chunksize, **_csv_options(args))
    except ImportError as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None


# --- columns -----------------------------------------------------------------


def _is_model_dtype(series):
    """Numeric for the model: numbers, not true/false."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
        series
    )


def _is_text(series):
    # object (pandas 2) or the str dtype (pandas 3's default for text)
    return pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)


def _token_error(column, series, args):
    """The error for numbers mixed with other tokens in ``column``."""
    values = series.dropna().astype(str)
    tokens = values[pd.to_numeric(values, errors="coerce").isna()]
    if (
        args.decimal != ","
        and pd.to_numeric(tokens.str.replace(",", ".", regex=False), errors="coerce")
        .notna()
        .all()
    ):
        return CommandError(
            f"column {column!r} holds numbers with a decimal comma "
            f"({tokens.iloc[0]!r}); give --decimal ','"
        )
    counts = tokens.value_counts()
    shown = ", ".join(f"{token!r} ({n} cells)" for token, n in counts.head(3).items())
    more = f" and {len(counts) - 3} more" if len(counts) > 3 else ""
    return CommandError(
        f"column {column!r} is numeric except for {shown}{more}; give "
        "--na-values to read such tokens as missing, or --pass-through "
        f"{column} to leave the column as it is"
    )


def _looks_numeric(series, args):
    """True when most non-missing cells of a text column are numbers.

    Numbers with a decimal comma count too, so that a European file read
    without ``--decimal ','`` is an error that says so, not text.
    """
    values = series.dropna()
    if values.empty or not all(isinstance(v, str) for v in values.head(1000)):
        return False  # empty, or Python objects such as True/False
    values = values.astype(str)
    parsed = pd.to_numeric(values, errors="coerce")
    if args.decimal != ",":
        commas = values.str.replace(",", ".", regex=False)
        parsed = parsed.fillna(pd.to_numeric(commas, errors="coerce"))
    return parsed.notna().mean() > 0.5


def plan_columns(frame, args):
    """Which columns the model sees and why the others are passed through."""
    through = [c for c in (args.pass_through or "").split(",") if c]
    unknown = [c for c in through if c not in frame.columns]
    if unknown:
        raise CommandError(f"--pass-through names no column {unknown[0]!r}")
    model, reasons = [], {}
    for column in frame.columns:
        series = frame[column]
        if str(column) in through:
            reasons[column] = "passed through (--pass-through)"
        elif pd.api.types.is_bool_dtype(series):
            reasons[column] = "passed through (true/false)"
        elif _is_model_dtype(series):
            if series.isna().all():
                raise CommandError(
                    f"numeric column {column!r} has no observed value, so there "
                    f"is nothing to impute it from; drop it, or give "
                    f"--pass-through {column} to leave it empty"
                )
            model.append(column)
        elif _is_text(series) and _looks_numeric(series, args):
            raise _token_error(column, series, args)
        else:
            reasons[column] = "passed through (text)"
    return model, reasons


# --- imputing ----------------------------------------------------------------


def _model_columns(imputer, frame, args):
    """The input columns the model was fitted on, checked, as floats."""
    if getattr(imputer, "feature_names_in_", None) is None:
        raise CommandError("the model has no column names (fitted on an array)")
    names = [str(c) for c in imputer.feature_names_in_]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise CommandError(
            f"the model was fitted on other columns: {', '.join(missing)} "
            "missing from the input"
        )
    for column in names:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            raise CommandError(
                f"column {column!r} is true/false; the model has numbers"
            )
        if not _is_model_dtype(series) and series.notna().any():
            raise _token_error(column, series, args)
    return names, frame[names].astype(np.float64)


def impute_frame(imputer, frame, args, counts, uniform):
    """Impute the model's columns of ``frame``; others stay as they are.

    A column with no hole keeps its values and type, unless ``uniform``
    (chunks: every chunk must give a column the same type, and a later chunk
    may have holes), when integer columns become float in every chunk.
    """
    names, values = _model_columns(imputer, frame, args)
    if frame.empty:  # a header-only file: nothing to impute, write the header
        return frame.astype(dict.fromkeys(names, np.float64)) if uniform else frame
    try:
        imputed = np.asarray(imputer.transform(values))
        out_names = [str(c) for c in imputer.get_feature_names_out()]
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    holes = values.isna()
    out = frame.copy()
    for j, column in enumerate(out_names):  # columns empty in fit are not here
        n = int(holes[column].sum())
        counts[column] = counts.get(column, 0) + n
        # (A model may also replace observed cells: the copula's censored
        # values below a detection limit.)
        replaced = not np.array_equal(imputed[:, j], values[column], equal_nan=True)
        if n or uniform or replaced:
            out[column] = imputed[:, j]
    return out


def column_summary(frame, model, reasons, counts, imputer=None, uniform=False):
    """One line: what happened to each column."""
    out_names = (
        {str(c) for c in imputer.get_feature_names_out()}
        if imputer is not None
        else None
    )
    parts = []
    for column in frame.columns:
        if column in reasons:
            parts.append(f"{column}: {reasons[column]}")
        elif out_names is not None and str(column) not in out_names:
            parts.append(f"{column}: passed through (empty when the model was fitted)")
        elif column in model:
            n = counts.get(column)
            if n is None:
                parts.append(f"{column}: in the model")
                continue
            text = f"imputed {n} cells" if n else "complete"
            if pd.api.types.is_integer_dtype(frame[column]) and (n or uniform):
                text += " (integer column written as float)"
            parts.append(f"{column}: {text}")
    return "; ".join(parts)


def chunk_seeds(imputer, random_state):
    """One seed per chunk for posterior draws.

    An integer ``random_state`` restarts the same stream at every call of
    ``transform``, so chunks would share their draws; children of one
    ``SeedSequence`` give each chunk its own stream, reproducibly.
    """
    if not getattr(imputer, "sample_posterior", False):
        return None
    if random_state is None:
        random_state = imputer.random_state
    if not (random_state is None or isinstance(random_state, int)):
        random_state = None
    sequence = np.random.SeedSequence(random_state)
    return (int(sequence.spawn(1)[0].generate_state(1)[0]) for _ in itertools.count())


# --- writing -----------------------------------------------------------------


def _same_file(a, b):
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output(path, what, data=None, force=False, model=None):
    """Refuse an output that cannot be written or would replace an input."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{what} {path} is a folder")
    if not path.parent.is_dir():
        raise CommandError(f"folder {path.parent} does not exist (for {what} {path})")
    if model is not None and _same_file(path, model):
        raise CommandError(f"{what} {path} is the model file")
    if data is not None and _same_file(path, data):
        if force is None:
            raise CommandError(f"{what} {path} is the data file")
        if not force:
            raise CommandError(
                f"{what} {path} is the input file; give --force to replace it"
            )


@contextlib.contextmanager
def atomic(path):
    """A temporary path in ``path``'s folder, renamed to ``path`` on success.

    The rename is atomic on one file system (``os.replace``), so readers see
    the old file or the complete new one; on any failure the temporary file
    is removed and ``path`` is untouched.  The temporary name ends with the
    output's name, so pandas infers the same compression from it.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".emimpute-",
                                     suffix=f"-{path.name}")  # fmt: skip
    os.close(fd)
    try:
        yield Path(temporary)
        if path.exists():
            mode = path.stat().st_mode & 0o777
        else:  # mkstemp makes the file private; a new file gets the usual mode
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_stream(frames, output, sep, args, progress):
    """Write chunks one after another (memory: one chunk at a time)."""
    output = Path(output)
    rows = 0
    try:
        with atomic(output) as temporary:
            writer = None
            try:
                for i, frame in enumerate(frames):
                    if _is_parquet(output):
                        writer = _write_parquet(frame, temporary, writer, i)
                    else:
                        frame.to_csv(temporary, mode="w" if i == 0 else "a",
                                     header=i == 0, index=False, sep=sep,
                                     decimal=args.decimal)  # fmt: skip
                    rows += len(frame)
                    if progress:
                        sys.stderr.write(f"\r{rows:,} rows imputed")
                        sys.stderr.flush()
            finally:
                if writer is not None:
                    writer.close()
                if progress:
                    sys.stderr.write("\n")
    except OSError as error:
        raise CommandError(
            f"cannot write {output}: {error.strerror or error}"
        ) from None
    return rows


def _write_parquet(frame, path, writer, i):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise CommandError(f"cannot write {path}: {error}") from None
    # Back to NumPy types where the nullable ones of _nullable_types() hold
    # no missing value, so pandas reads the output with the types it would
    # read the input with (its metadata in the file names the dtype).
    nullable = (pd.BooleanDtype, pd.core.arrays.integer.IntegerDtype)
    frame = frame.astype(
        {
            c: frame[c].dtype.numpy_dtype
            for c in frame.columns
            if isinstance(frame[c].dtype, nullable) and not frame[c].isna().any()
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    elif table.schema != writer.schema:
        try:  # e.g. a text column with no value in this chunk
            table = table.cast(writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            raise CommandError(
                f"chunk {i + 1} has other column types than the first"
            ) from None
    writer.write_table(table)
    return writer
