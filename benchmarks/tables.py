"""Markdown tables from the benchmark results in ``benchmarks/results/``.

One small function per results file, ``<name>_table(json_path) -> str``, registered in
``TABLES`` under the file's name; :func:`main` prints the table of every results file present.

    python benchmarks/tables.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f}"


#: kernel rows: copies, then each kernel allocating its output and writing into ``out=``
KERNEL_ROWS = (
    "copy",
    "copy_allocating",
    "heat_residual_2d",
    "heat_residual_2d_out",
    "navier_stokes_residual_2d",
    "navier_stokes_residual_2d_out",
)


def residual_engines_table(json_path: str | Path) -> str:
    """One row per (case, engine) of ``residual_engines*.json``: median step time, speed-up and
    peak memory against DeepXDE, residual difference against DeepXDE; then the kernels."""
    data = json.loads(Path(json_path).read_text())
    s = data["settings"]
    lines = [
        f"Training step (residual + MSE + parameter backward), {s['network']}, {s['points']} "
        f"points, {s['dtype']}; median of {s['repeats']} steps. Device: {data['device']}.",
        "",
        "| case | engine | median step (ms) | speed-up vs DeepXDE | peak memory (MiB) "
        "| memory / DeepXDE | max rel. diff vs DeepXDE |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case, c in data["cases"].items():
        for engine, r in c["engines"].items():
            name = f"**{engine}**" if engine == c["best_engine"] else engine
            if r.get("status") != "ok":
                reason = r.get("reason", "").splitlines()[0][:80] if r.get("reason") else ""
                lines.append(f"| {case} | {name} | {r.get('status')}: {reason} | | | | |")
                continue
            speed = f"{r['speedup_vs_deepxde']:.2f}x" if "speedup_vs_deepxde" in r else "1"
            mem = f"{r['memory_ratio_vs_deepxde']:.2f}" if "memory_ratio_vs_deepxde" in r else "1"
            diff = r.get("rel_diff_vs_deepxde")
            diff_s = f"{max(diff.values()):.1e}" if diff else "(reference)"
            lines.append(
                f"| {case} | {name} | {_ms(r['median_s'])} | {speed} "
                f"| {_mib(r['peak_memory_bytes'])} | {mem} | {diff_s} |"
            )
    k = data.get("kernels")
    if k:
        n = "x".join(str(v) for v in k["grid"])
        lines += [
            "",
            f"numba grid-residual kernels, {n} {k['dtype']} grid, {k['numba_threads']} thread(s); "
            "bandwidth = minimal bytes moved / median time.",
            "",
            "| operation | median (ms) | bandwidth (GB/s) | ratio to copy "
            "| ratio to allocating copy |",
            "|---|---:|---:|---:|---:|",
        ]
        for op in KERNEL_ROWS:
            if op not in k:
                continue
            r = k[op]
            ratios = [
                f"{r[key]:.2f}" if key in r else ""
                for key in ("bandwidth_ratio_to_copy", "bandwidth_ratio_to_allocating_copy")
            ]
            cells = [op, _ms(r["median_s"]), f"{r['bandwidth_gb_s']:.2f}", *ratios]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: results file stem -> table function; ``residual_engines_cuda`` shares the CPU layout
TABLES: dict[str, Callable[[str | Path], str]] = {
    "residual_engines": residual_engines_table,
    "residual_engines_cuda": residual_engines_table,
}


def main(results: Path = RESULTS) -> None:
    """Print the table of every results file present that has a table function."""
    for stem, fn in TABLES.items():
        path = results / f"{stem}.json"
        if path.exists():
            print(f"### {stem}\n\n{fn(path)}\n")


if __name__ == "__main__":
    main()
