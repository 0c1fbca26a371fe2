"""Shared helpers of the benchmark scripts: timing, Markdown tables, machine."""

import datetime
import os
import platform
import shlex
import sys
import time

import numpy as np


def timed(function, *args, **kwargs):
    """``(seconds, result)`` of one call, timed with ``time.perf_counter``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def median_time(function, repeats):
    """Median wall time of ``repeats`` calls (after none: warm up yourself)."""
    return float(np.median([timed(function)[0] for _ in range(repeats)]))


def markdown_table(headers, rows, align=None):
    """A Markdown table; ``align`` is a string of 'l'/'r', one per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            fields = dict(
                line.split(":", 1) for line in info if ":" in line and line.strip()
            )
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    model = fields.get("model name", "unknown CPU")
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return model


def _memory_gb():
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return float("nan")
    return pages / 2**30


def _blas():
    """The BLAS libraries loaded (NumPy and SciPy may each bring their own)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS"
    found = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = info.get("filepath", "")
        owner = "numpy" if "numpy" in path else "scipy" if "scipy" in path else "?"
        text = (
            f"{owner}: {info['internal_api']} {info['version']}, "
            f"{info['num_threads']} threads"
        )
        if text not in found:
            found.append(text)
    return "; ".join(sorted(found)) or "unknown BLAS"


def machine_header():
    """Markdown lines: machine, software versions, date and the command."""
    import sklearn

    import emimpute

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join(
        [
            f"- Machine: {os.cpu_count()} CPUs, {_cpu_model()}, "
            f"{_memory_gb():.1f} GB RAM; {platform.system()} {platform.machine()}",
            f"- Software: Python {platform.python_version()}, NumPy "
            f"{np.__version__}, scikit-learn {sklearn.__version__}, "
            f"emimpute {emimpute.__version__}; BLAS ({_blas()})",
            f"- Date: {today}",
            f"- Command: `{command}`",
        ]
    )
