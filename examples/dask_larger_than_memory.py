"""Fit and impute data that are read piece by piece, with Dask.

A folder of Parquet files stands for data too large for one process: Dask
reads it one partition at a time, `DaskEMImputer` computes each EM step's
sums partition by partition on the workers (only p x p matrices travel), and
the imputed data are written back partition by partition.  Here the workers
are two local processes with 512 MiB each; on a cluster the only change is
the address given to `Client` (see the end of this file).

Needs the `dask` extra: pip install "emimpute[dask]".

Run: python examples/dask_larger_than_memory.py
"""

import tempfile
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

from emimpute import EMImputer
from emimpute.ampute import ampute
from emimpute.dask import DaskEMImputer


def write_parquet_folder(folder, n_files=8, rows_per_file=25_000, seed=0):
    """Survey-like data: income and spending depend on age; values are
    missing at random given age (older people skip more questions)."""
    rng = np.random.default_rng(seed)
    for i in range(n_files):
        age = rng.uniform(20, 70, rows_per_file)
        income = 20 + 0.8 * age + rng.normal(0, 10, rows_per_file)
        spending = 5 + 0.5 * income + rng.normal(0, 6, rows_per_file)
        savings = income - spending + rng.normal(0, 4, rows_per_file)
        frame = pd.DataFrame(
            {"age": age, "income": income, "spending": spending, "savings": savings}
        )
        frame = ampute(
            frame, 0.4, mechanism="MAR", patterns=[["income"], ["spending", "savings"]],
            weights=[[1, 0, 0, 0], [1, 0, 0, 0]], random_state=seed + i,
        )  # fmt: skip
        frame.to_parquet(folder / f"part-{i:03d}.parquet")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "survey", Path(tmp) / "imputed"
        source.mkdir()
        write_parquet_folder(source)
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="512MiB",
                         dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            print(f"Workers: {len(client.scheduler_info()['workers'])}")
            data = dd.read_parquet(source)  # lazy: nothing is read yet
            imputer = DaskEMImputer().fit(data)
            print(
                f"Fitted on {data.npartitions} partitions: {imputer.n_iter_} "
                f"iterations, converged: {imputer.converged_}"
            )
            means = pd.Series(imputer.mean_, index=data.columns).round(2)
            print("Estimated means:", means.to_dict())
            # Written partition by partition, in the workers.
            imputer.transform(data).to_parquet(target)

        # The same data in memory give the same estimate.
        whole = pd.read_parquet(source)
        reference = EMImputer().fit(whole)
        difference = np.max(np.abs(imputer.covariance_ - reference.covariance_))
        print(f"Largest difference from the in-memory fit: {difference:.1e}")
        imputed = pd.read_parquet(target)
        print(
            f"Imputed file: {len(imputed):,} rows, "
            f"{int(imputed.isna().sum().sum())} missing cells left"
        )
        # Saving: to_local() gives a plain EMImputer, for the command line's
        # model files (emimpute.cli) or for in-memory use.
        local = imputer.to_local()
        print(f"As an in-memory imputer: {type(local).__name__}")
    return imputer, reference, imputed


# On a cluster, connect to its scheduler instead of starting a LocalCluster;
# every Dask computation, the fit's included, then runs there:
#
#     client = Client("tcp://scheduler-address:8786")
#     data = dd.read_parquet("s3://bucket/survey/")   # each worker reads its part
#     imputer = DaskEMImputer().fit(data)
#     imputer.transform(data).to_parquet("s3://bucket/imputed/")

if __name__ == "__main__":
    main()
