"""What ``python -m fastxent bench`` shows: progress, the tables, the JSON and the plot."""

import datetime
import json
import os
import platform
import sys
import time

import numpy as np

CONTENDER_NAMES = {"numpy": "NumPy", "torch": "PyTorch eager", "torch.compile": "torch.compile",
                   "jax": "JAX/optax (jit)"}


def case_label(row):
    """``"8192x1000 float32 sparse loss+grad"``: a row's case, as the tables and plots name it."""
    return (f"{row['shape'][0]}x{row['shape'][1]} {row['dtype']} {row['labels']} "
            f"{'loss+grad' if row['grad'] else 'loss'}")


def _gbs(row, key):
    return row["bytes"] / row[key] / 1e9


def peer_columns(rows, peers):
    """The peers timed on at least one of ``rows``, in ``peers``' order."""
    return [p for p in peers if any(f"{p}_s" in r for r in rows)]


def fastest_peer(row, peers):
    """(name, seconds) of the fastest peer timed for this row, or (None, None)."""
    timed = [(row[f"{p}_s"], p) for p in peers if f"{p}_s" in row]
    if not timed:
        return None, None
    seconds, name = min(timed)
    return name, seconds


def _key(row):
    return tuple(row["shape"]), row["dtype"], row["labels"], row["grad"], row["path"]


def thread_speedups(rows):
    """{id(all-thread row): one thread's time / all threads' time} where both were timed."""
    one = {_key(r): r for r in rows if r["threads"] == "1"}
    return {id(r): one[_key(r)]["fastxent_s"] / r["fastxent_s"] for r in rows
            if r["threads"] == "all" and _key(r) in one}


def format_table(rows, peers):
    """A Markdown table: one line per row, fastxent's rate and its ratio to everyone else."""
    peer_cols = peer_columns(rows, peers)
    speedups = thread_speedups(rows)
    head = ["shape", "labels", "mode", "thr", "path", "fastxent GB/s", "ns/row", "x read",
            "x NumPy"]
    head += [f"x {p}" for p in peer_cols] + (["x fastest peer"] if peer_cols else [])
    head += ["all thr / 1 thr"] if speedups else []
    head += ["read GB/s", "check"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{r['shape'][0]}x{r['shape'][1]} {r['dtype']}", r["labels"],
                 "loss+grad" if r["grad"] else "loss", r["threads"], r["path"],
                 f"{_gbs(r, 'fastxent_s'):.2f}", f"{1e9 * r['fastxent_s'] / r['shape'][0]:.1f}",
                 f"{r['fastxent_s'] / r['read_inputs_s']:.2f}",
                 f"{r['numpy_s'] / r['fastxent_s']:.1f}"]
        for p in peer_cols:
            key = f"{p}_s"
            cells.append(f"{r[key] / r['fastxent_s']:.1f}" if key in r else "-")
        if peer_cols:
            name, seconds = fastest_peer(r, peer_cols)
            cells.append(f"{seconds / r['fastxent_s']:.1f} ({name})" if name else "-")
        if speedups:
            cells.append(f"{speedups[id(r)]:.2f}" if id(r) in speedups else "-")
        cells += [f"{_gbs(r, 'read_s'):.1f}", "OK" if r["matches_reference"] else "MISMATCH"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(row, peers):
    """One line for one result: its rate and how it compares, for the progress log."""
    parts = [f"{_gbs(row, 'fastxent_s'):.2f} GB/s", f"{row['fastxent_s'] / row['read_inputs_s']:.2f}x read",
             f"{row['numpy_s'] / row['fastxent_s']:.1f}x faster than NumPy"]
    name, seconds = fastest_peer(row, peers)
    if name:
        parts.append(f"{seconds / row['fastxent_s']:.1f}x than {name}")
    parts.append("OK" if row["matches_reference"] else "MISMATCH")
    threads = "1 thread" if row["threads"] == "1" else "all threads"
    return f"{case_label(row)} ({threads}, {row['path']}): " + ", ".join(parts)


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Each result as it finishes, ``[k/N]``, with the time spent and an estimate of the
    time left; a tqdm bar under the lines where tqdm is installed and ``out`` is a terminal.

    The estimate is the mean time per result so far times the results left: every
    measurement runs for about the same ``--min-time``, whatever the shape."""

    def __init__(self, total, out=sys.stderr, clock=time.perf_counter):
        self.total, self.done, self.out, self.clock = total, 0, out, clock
        self.start = clock()
        self.bar = None
        if getattr(out, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, file=out, unit="result", dynamic_ncols=True)

    def time_left(self):
        """Seconds left by the mean so far, or None before the first result."""
        if not self.done:
            return None
        return (self.clock() - self.start) / self.done * (self.total - self.done)

    def update(self, row, peers):
        self.done += 1
        line = f"[{self.done}/{self.total}] {summary(row, peers)}"
        if self.bar is not None:
            self.bar.write(line)
            self.bar.update()
            return
        left = self.time_left()
        print(f"{line}  [{_duration(self.clock() - self.start)} spent, "
              f"~{_duration(left)} left]", file=self.out, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def metadata(argv, cpu, paths, peers, min_time):
    """Where and how the figures were taken: kept at the head of the JSON."""
    import fastxent
    from fastxent import _cpu

    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python -m fastxent bench", *argv]).strip(),
            "hostname": platform.node(),
            "versions": {"fastxent": fastxent.__version__, "numpy": np.__version__,
                         "python": platform.python_version(),
                         **{k: v for k, v in peers.items() if k != "torch.compile"}},
            "machine": platform.machine(), "cpus": os.cpu_count(), "cpu": cpu,
            "kernel": _cpu.info(), "paths": paths, "peers": peers, "min_time_s": min_time,
            "timing": "each measurement: one warm-up call, then at least 5 calls and about "
                      "min_time_s of them; *_s is the median, times.* the min, median and max"}


class JsonWriter:
    """The figures so far, rewritten after each result (``"complete": false`` until the
    last), so that an interrupted run keeps what it measured."""

    def __init__(self, filename, meta):
        self.filename, self.meta = filename, meta

    def write(self, rows, complete=False):
        if not self.filename:
            return
        partial = f"{self.filename}.partial"
        with open(partial, "w") as f:
            json.dump({"complete": complete, **self.meta, "rows": rows}, f, indent=1)
        os.replace(partial, self.filename)


def plot(rows, peers, filename, title):
    """Speedup bars, fastxent against NumPy and each peer, one panel per thread count and
    kernel path, a bar per case and contender on a log axis with the 1x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    contenders = ["numpy"] + peer_columns(rows, peers)
    groups = list(dict.fromkeys((r["threads"], r["path"]) for r in rows))
    cases = list(dict.fromkeys(case_label(r) for r in rows))
    height = 0.8 / len(contenders)
    fig, axes = plt.subplots(1, len(groups), sharey=True, squeeze=False, layout="constrained",
                             figsize=(5.5 * len(groups) + 2.5, 0.32 * len(cases) * len(contenders) ** 0.5 + 2))
    colors = plt.get_cmap("tab10").colors
    for ax, (threads, path) in zip(axes[0], groups):
        by_case = {case_label(r): r for r in rows if (r["threads"], r["path"]) == (threads, path)}
        for k, name in enumerate(contenders):
            ratios = [by_case[c][f"{name}_s"] / by_case[c]["fastxent_s"]
                      if c in by_case and f"{name}_s" in by_case[c] else np.nan for c in cases]
            offsets = np.arange(len(cases)) + (k - (len(contenders) - 1) / 2) * height
            ax.barh(offsets, ratios, height=height, color=colors[k % len(colors)],
                    label=CONTENDER_NAMES.get(name, name) if ax is axes[0][0] else None)
        ax.axvline(1.0, color="black", linewidth=1.2)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.set_title(f"{'one thread' if threads == '1' else 'all threads'}, kernel path {path}")
        ax.set_xlabel("their time / fastxent's time (right of 1: fastxent is faster)")
    axes[0][0].set_yticks(np.arange(len(cases)), cases)
    axes[0][0].invert_yaxis()
    fig.suptitle(title)
    fig.legend(loc="outside lower center", ncol=len(contenders), frameon=False)
    fig.savefig(filename, dpi=100)
    plt.close(fig)
