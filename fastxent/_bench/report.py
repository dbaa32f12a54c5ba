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
# One colour per contender, whichever ran; fastxent's dtypes as line styles.
COLORS = {"fastxent": "tab:blue", "numpy": "tab:gray", "torch": "tab:orange",
          "torch.compile": "tab:red", "jax": "tab:green"}
DTYPE_STYLES = {"float32": "-", "float16": "--", "bfloat16": ":", "float64": "-."}


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


def sweep_logits(rows):
    """About how many logits per call the sweep's rows take (their largest)."""
    sizes = [r["shape"][0] * r["shape"][1] for r in rows if r.get("part") == "sweep"]
    return f"{max(sizes):,}" if sizes else "-"


def format_sweep(rows, peers):
    """A Markdown table of the sweep: one line per class count and mode, fastxent's float32
    time per logit and its ratio to each peer, and each other dtype against float32."""
    peer_cols = peer_columns(rows, peers)
    dtypes = [d for d in DTYPE_STYLES if d != "float32" and any(r["dtype"] == d for r in rows)]
    head = ["C", "N", "mode", "float32 ns/logit"] + [f"x {p}" for p in peer_cols]
    head += ["x fastest peer"] if peer_cols else []
    head += [f"{d} x f32" for d in dtypes if d != "float64"]
    head += ["float64 ns/logit"] if "float64" in dtypes else []
    head += ["check"]
    by_case = {(r["shape"][1], r["grad"], r["dtype"]): r for r in rows}
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for c, grad in dict.fromkeys((r["shape"][1], r["grad"]) for r in rows):
        f32 = by_case.get((c, grad, "float32"))
        cells = [str(c), str((f32 or by_case.get((c, grad, dtypes[0] if dtypes else ""), {}))
                             .get("shape", [0])[0]), "loss+grad" if grad else "loss"]
        cells.append(f"{1e9 * f32['fastxent_s'] / (f32['shape'][0] * c):.3f}" if f32 else "-")
        for p in peer_cols:
            key = f"{p}_s"
            cells.append(f"{f32[key] / f32['fastxent_s']:.2f}" if f32 and key in f32 else "-")
        if peer_cols:
            name, seconds = fastest_peer(f32, peer_cols) if f32 else (None, None)
            cells.append(f"{seconds / f32['fastxent_s']:.2f} ({name})" if name else "-")
        for d in dtypes:
            r = by_case.get((c, grad, d))
            if d == "float64":
                cells.append(f"{1e9 * r['fastxent_s'] / (r['shape'][0] * c):.3f}" if r else "-")
            else:
                cells.append(f"{r['fastxent_s'] / f32['fastxent_s']:.2f}" if r and f32 else "-")
        checked = [by_case[k]["matches_reference"] for k in by_case if k[:2] == (c, grad)]
        cells.append("OK" if all(checked) else "MISMATCH")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_calls(rows):
    """A Markdown table of the small calls: microseconds per call and the ratio to the plain
    call (fastxent's first form)."""
    ours = [r for r in rows if r["path"]]
    plain = ours[0]["call_s"] if ours else None
    lines = ["| call | us per call | x plain |", "| --- | --- | --- |"]
    for r in ours + [r for r in rows if not r["path"]]:
        ratio = f"{r['call_s'] / plain:.2f}" if plain else "-"
        lines.append(f"| {r['form']} | {r['call_s'] * 1e6:.2f} | {ratio} |")
    return "\n".join(lines)


def summary(row, peers):
    """One line for one result: its rate and how it compares, for the progress log."""
    if row.get("part") == "calls":
        where = f" ({row['path']})" if row["path"] else ""
        return f"small call {row['form']}{where}: {row['call_s'] * 1e6:.2f} us"
    parts = [f"{_gbs(row, 'fastxent_s'):.2f} GB/s", f"{row['fastxent_s'] / row['read_inputs_s']:.2f}x read"]
    if "numpy_s" in row:
        parts.append(f"{row['numpy_s'] / row['fastxent_s']:.1f}x faster than NumPy")
    name, seconds = fastest_peer(row, peers)
    if name:
        parts.append(f"{seconds / row['fastxent_s']:.1f}x than {name}")
    parts.append("OK" if row["matches_reference"] else "MISMATCH")
    threads = "1 thread" if row["threads"] == "1" else "all threads"
    part = "sweep " if row.get("part") == "sweep" else ""
    return f"{part}{case_label(row)} ({threads}, {row['path']}): " + ", ".join(parts)


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
    from fastxent._backends import cpu as _cpu

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
    """Draw the sweep (``filename``: time per logit against the class count, log-log,
    fastxent a line per dtype and each peer a line, a panel per kernel path and mode) and the
    workload's speedups (bars, beside it in ``<stem>-workload.png``). Returns the files
    written."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    sweep = [r for r in rows if r.get("part") == "sweep"]
    cases = [r for r in rows if r.get("part", "workload") == "workload"]
    if sweep:
        _plot_sweep(sweep, peers, filename, title)
        written.append(filename)
    if cases:
        stem, dot, ext = filename.rpartition(".")
        name = f"{stem}-workload.{ext}" if sweep and dot else filename
        _plot_speedups(cases, peers, name, title)
        written.append(name)
    return written


def _plot_sweep(rows, peers, filename, title):
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    paths = list(dict.fromkeys(r["path"] for r in rows))
    fig, axes = plt.subplots(len(paths), 2, sharex=True, squeeze=False, layout="constrained",
                             figsize=(12, 4.2 * len(paths) + 1))
    contenders = peer_columns(rows, peers)
    for i, path in enumerate(paths):
        for j, grad in enumerate((False, True)):
            ax = axes[i][j]
            mine = [r for r in rows if r["path"] == path and r["grad"] == grad]
            for dtype, style in DTYPE_STYLES.items():
                line = sorted((r["shape"][1], 1e9 * r["fastxent_s"] / (r["shape"][0] * r["shape"][1]))
                              for r in mine if r["dtype"] == dtype)
                if line:
                    ax.plot(*zip(*line), style, marker="o", color=COLORS["fastxent"],
                            label=f"fastxent {dtype}")
            for name in contenders:
                line = sorted((r["shape"][1], 1e9 * r[f"{name}_s"] / (r["shape"][0] * r["shape"][1]))
                              for r in mine if f"{name}_s" in r)
                if line:
                    ax.plot(*zip(*line), "-", marker="s", color=COLORS.get(name, "black"),
                            label=f"{CONTENDER_NAMES.get(name, name)} float32")
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.grid(which="both", alpha=0.3)
            ax.set_title(f"{'loss + gradient' if grad else 'loss'}, one thread, kernel path {path}")
            ax.set_xlabel("classes C")
            ax.set_ylabel("ns per logit (lower is faster)")
            ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.savefig(filename, dpi=100)
    plt.close(fig)


def _plot_speedups(rows, peers, filename, title):
    """Speedup bars, fastxent against NumPy and each peer, one panel per thread count and
    kernel path, a bar per case and contender on a log axis with the 1x line."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    contenders = ["numpy"] + peer_columns(rows, peers)
    groups = list(dict.fromkeys((r["threads"], r["path"]) for r in rows))
    cases = list(dict.fromkeys(case_label(r) for r in rows))
    height = 0.8 / len(contenders)
    fig, axes = plt.subplots(1, len(groups), sharey=True, squeeze=False, layout="constrained",
                             figsize=(5.5 * len(groups) + 2.5, 0.32 * len(cases) * len(contenders) ** 0.5 + 2))
    for ax, (threads, path) in zip(axes[0], groups):
        by_case = {case_label(r): r for r in rows if (r["threads"], r["path"]) == (threads, path)}
        for k, name in enumerate(contenders):
            ratios = [by_case[c][f"{name}_s"] / by_case[c]["fastxent_s"]
                      if c in by_case and f"{name}_s" in by_case[c] else np.nan for c in cases]
            offsets = np.arange(len(cases)) + (k - (len(contenders) - 1) / 2) * height
            ax.barh(offsets, ratios, height=height, color=COLORS.get(name, "black"),
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
