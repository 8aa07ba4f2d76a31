"""Markdown tables of the diffusion benchmark's records, shared by the chapter and the
Benchmarks page so that both show the same rows from the same fields.

The functions take records as :func:`~companion.pretrained.load_record` returns it
(``"diffusion_fashion"``, ``"diffusion_mode_coverage"``) and return Markdown text.
"""

from __future__ import annotations

from collections.abc import Mapping

_MIXTURES = {"ring": 8, "grid": 25}


def _need(record: Mapping, keys: tuple[str, ...], name: str) -> None:
    if not isinstance(record, Mapping):
        raise TypeError(f"record is a {type(record).__name__}; pass load_record({name!r}).")
    missing = [k for k in keys if k not in record]
    if missing:
        raise KeyError(f"the record lacks {missing}; pass load_record({name!r}).")


def diffusion_fashion_table(record: Mapping) -> str:
    """The Fréchet table of ``benchmarks/diffusion.py --part fashion``.

    One row per model: the number of samples n it was scored on, the Fréchet distance at
    that n, the distance at the smallest n every model was scored on (the estimate is
    biased upwards at small n, so only that column compares all models alike), and the
    sampling time per image; then the train-vs-test floor at each n (the distance between
    two sets of real images of that size), and the DCGAN target if the record has one.
    """
    _need(record, ("models", "train_vs_test_floor_by_n", "n_compared_alike"), "diffusion_fashion")
    alike = record["n_compared_alike"]
    lines = [
        f"| model | n samples | Fréchet at n | Fréchet at n = {alike:,} | ms per image |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in record["models"].items():
        lines.append(
            f"| {name} | {row['n_samples']:,} | {row['frechet']:.1f} | "
            f"{row[f'frechet_at_{alike}']:.1f} | {row['sampling_ms_per_image']:.3g} |"
        )
    floors = ", ".join(
        f"{value:.1f} at n = {int(n):,}"
        for n, value in sorted(record["train_vs_test_floor_by_n"].items(), key=lambda i: int(i[0]))
    )
    lines += ["", f"Floor (training images against test images): {floors}."]
    target = record.get("targets", {}).get("dcgan_frechet")
    if target is not None:
        lines.append(
            f"Target: diffusion below the DCGAN's {target} (measured on the DCGAN page with "
            "5,000 samples)."
        )
    return "\n".join(lines)


def diffusion_coverage_table(record: Mapping) -> str:
    """The mode-coverage table of ``benchmarks/diffusion.py --part mixtures``: the
    diffusion model's rows (mean over seeds, with the worst seed) beside the GAN tricks'
    rows copied into the record from ``gan.json``, with the seconds of one training run."""
    _need(record, ("summary", "gan_summary", "protocol"), "diffusion_mode_coverage")
    lines = [
        "| model | updates | ring modes (of 8) | ring high quality | grid modes (of 25) "
        "| grid high quality | s per run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, steps, by_mixture: Mapping) -> str:
        cells = []
        for mixture in _MIXTURES:
            s = by_mixture.get(mixture)
            if s is None:
                cells += ["—", "—"]
                continue
            quality = f"{s['high_quality_mean']:.0%}"
            if "high_quality_min" in s:
                quality += f" (min {s['high_quality_min']:.0%})"
            cells += [f"{s['modes_mean']:.1f} (min {s['modes_min']})", quality]
        seconds = [by_mixture[m]["seconds_mean"] for m in _MIXTURES if m in by_mixture]
        mean_seconds = f"{sum(seconds) / len(seconds):.0f}" if seconds else "—"
        return f"| {name} | {steps:,} | " + " | ".join(cells) + f" | {mean_seconds} |"

    lines.append(row("**diffusion (DDPM)**", record["protocol"]["steps"], record["summary"]))
    for trick, by_mixture in record["gan_summary"].items():
        lines.append(row(f"GAN, {trick}", record.get("gan_steps") or 0, by_mixture))
    seeds = ", ".join(f"{s['seeds']} on the {m}" for m, s in record["summary"].items())
    lines += [
        "",
        f"Diffusion: seeds {seeds}"
        + ("" if record.get("complete", False) else " (unfinished: fewer seeds than asked)")
        + f"; sampler: {record['protocol']['sampler']}.",
    ]
    return "\n".join(lines)


def coverage_by_budget_table(diffusion: list[Mapping], gan_long_runs: Mapping) -> str:
    """Mode coverage against the number of updates: the diffusion records of
    ``benchmarks/diffusion.py --part mixtures`` (one per ``--steps``) and the GAN recipes'
    long runs (``load_record("gan")["long_runs"]``, scored along each run), one row per
    model and budget, means over seeds with the worst seed's modes."""
    _need(gan_long_runs, ("summary", "runs", "eval_at"), "gan")
    lines = [
        "| model | updates | ring modes (of 8) | ring high quality | grid modes (of 25) "
        "| grid high quality |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for record in sorted(diffusion, key=lambda r: r["protocol"]["steps"]):
        _need(record, ("summary", "protocol"), "diffusion_mode_coverage")
        cells = []
        for mixture in _MIXTURES:
            s = record["summary"][mixture]
            cells += [f"{s['modes_mean']:.1f} (min {s['modes_min']})",
                      f"{s['high_quality_mean']:.1%}"]  # fmt: skip
        lines.append(
            f"| **diffusion (DDPM)** | {record['protocol']['steps']:,} | "
            + " | ".join(cells)
            + " |"
        )
    for trick, by_mixture in gan_long_runs["summary"].items():
        for at in gan_long_runs["eval_at"]:
            cells = []
            for mixture in _MIXTURES:
                s = by_mixture[mixture][str(at)]
                worst = min(
                    r["along_the_run"][str(at)]["modes"]
                    for r in gan_long_runs["runs"]
                    if r["trick"] == trick and r["mixture"] == mixture
                )
                cells += [f"{s['modes_mean']:.1f} (min {worst})", f"{s['high_quality_mean']:.1%}"]
            lines.append(f"| GAN, {trick} | {int(at):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
