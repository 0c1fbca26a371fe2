"""The one place where estimators print progress (kernels take a callback)."""


def iteration_reporter(name, verbose):
    """A kernel callback printing EM progress in scikit-learn's style.

    ``verbose=1`` prints every 10th iteration, ``verbose>=2`` every one;
    ``verbose=0`` returns None (nothing printed).
    """
    if not verbose:
        return None
    every = 1 if verbose >= 2 else 10

    def report(iteration, loglik, change):
        if iteration % every == 0 or iteration == 1:
            print(
                f"[{name}] iteration {iteration:4d}  log-likelihood {loglik:.6f}  "
                f"parameter change {change:.3e}",
                flush=True,
            )

    return report


def report_end(name, verbose, n_iter, converged):
    """Final line of verbose output."""
    if verbose:
        state = "converged" if converged else "did not converge"
        print(f"[{name}] {state} after {n_iter} iterations", flush=True)


def progress_bar(name, total, verbose, width=30):
    """A text progress bar for long loops, on standard error.

    Returns a callable to call once per finished step; it redraws the bar
    in place on a terminal (carriage return) and prints the final state with
    a newline.  Does nothing when ``verbose`` is 0.
    """
    import sys

    done = 0

    def step():
        nonlocal done
        done += 1
        if not verbose:
            return
        filled = round(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r[{name}] [{bar}] {done}/{total}{end}")
        sys.stderr.flush()

    return step
