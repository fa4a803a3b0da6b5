"""`report.md`: the front as a table and the plots, in the form a repository or a PR shows."""

from __future__ import annotations

from pathlib import Path

from nas.outputs import accuracy_text, seeds_text, versus_text
from nas.reporting.data import ReportData


def write_markdown(
    data: ReportData, figures: dict[str, Path], html: Path, path: Path, final: str = ""
) -> Path:
    """Write the summary at `path`, linking the figures and the HTML by relative path.

    `final` is the "final training" section (`nas.reporting.final`), shown with its figure
    after the front, since it is the result the front only predicts.
    """

    def link(target: Path) -> str:
        return target.relative_to(path.parent).as_posix()

    lines = [*_settings_section(data), *_front_section(data)]
    if final:
        lines += [final, ""]
        if "final_training" in figures:
            figure = figures["final_training"]
            lines += [f"![Final training: test accuracy against latency]({link(figure)})", ""]
    lines += [
        "## Plots",
        "",
        f"Interactive (hover for each trial's arch and attributes): [{link(html)}]({link(html)})",
        "",
    ]
    captions = {
        "accuracy_vs_latency": f"Accuracy against latency on {data.target}",
        "accuracy_vs_mflops": "Accuracy against MFLOPs",
        "history": "Optimisation history",
    }
    for name, figure in figures.items():
        if name == "final_training":
            continue
        lines += [
            f"### {captions.get(name, name)}",
            "",
            f"![{captions.get(name, name)}]({link(figure)})",
            "",
        ]
    lines += _zoo_section(data)
    lines += _coverage_section(data)
    if data.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in data.notes)]
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def _settings_section(data: ReportData) -> list[str]:
    """The title and what the search was: storage, target, budgets, space, data, trial counts."""
    config, dataset = data.config, data.dataset
    budgets = [
        f"{config[key]:g} {unit}"
        for key, unit in (
            ("budget_mflops", "MFLOPs"),
            ("budget_params", "parameters"),
            ("budget_ms", "ms"),
        )
        if config.get(key)
    ]
    shape = "x".join(map(str, dataset.input_shape or ())) or "?"
    return [
        f"# Search report: {data.study_name}",
        "",
        f"- storage: `{data.storage}`",
        f"- target: `{data.target}`; cost priced at 3x{data.input_size}x{data.input_size}, "
        f"MFLOPs = millions of multiply-adds",
        f"- budget: {', '.join(budgets) or 'none'}",
        f"- space: `{config.get('space', '?')}`; sampler `{config.get('sampler', '?')}`; "
        f"objective `{config.get('objective', '?')}`",
        f"- accuracy: validation split of `{dataset.name or '?'}` at {shape}, "
        f"{dataset.num_classes or '?'} classes (proxy training)",
        f"- trials: {data.counts.sentence()}",
        "",
    ]


def _front_section(data: ReportData) -> list[str]:
    """The front as a table, one member a row, and how to export one."""
    lines = [
        f"## Pareto front ({data.counts.front_title()}, within budget)",
        "",
        "Accuracy with its 95% Wilson interval on the validation split; *over seeds*: mean and "
        "standard deviation with the confirm runs, which the front is taken on; *vs cheaper*: "
        "more accurate than the next cheaper member beyond the noise (Welch t-test over seeds, "
        "or a two-proportion z-test on one run, at 5%), or a tie.",
        "",
        "| trial | accuracy [95% CI] | over seeds | vs cheaper | latency ms | MFLOPs | params | "
        "zoo | arch |",
        "|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for row in data.front:
        lines.append(
            f"| {row.number} | {accuracy_text(row)} | {seeds_text(row)} | "
            f"{versus_text(row)} | "
            f"{row.latency_ms:.2f} | {row.mflops:.1f} | {row.params:,} | "
            f"{data.zoo_name(row) or ''} | `{row.arch}` |"
        )
    if data.close_in_latency is not None:
        lines += ["", data.close_in_latency.line() + "."]
    return lines + [
        "",
        "Export one: `nas export --study "
        + data.study_name
        + " --trial N --format onnx --out model.onnx` (or `--best [--max-ms X]`).",
        "",
    ]


def _zoo_section(data: ReportData) -> list[str]:
    lines = [
        "## Zoo networks",
        "",
        "Trained in this study: marked from their trials (stars). Not trained (over budget "
        "or no warm start): marked on the cost axes only (dotted lines), since the study "
        "never measured their accuracy.",
        "",
        "| network | trial | accuracy | latency ms | MFLOPs |",
        "|---|---:|---:|---:|---:|",
    ]
    for mark in sorted(data.zoo, key=lambda m: m.mflops):
        accuracy = f"{mark.accuracy:.2%}" if mark.accuracy is not None else "not trained"
        latency = f"{mark.latency_ms:.2f}" if mark.latency_ms is not None else "?"
        lines.append(
            f"| {mark.name} | {mark.trial if mark.trial is not None else ''} | "
            f"{accuracy} | {latency} | {mark.mflops:.1f} |"
        )
    return lines + [""]


def _coverage_section(data: ReportData) -> list[str]:
    if data.coverage is None:
        return []
    return [
        "## Latency coverage",
        "",
        "Searched candidates trained (zoo networks not counted) per latency band, from the "
        "space's fastest network to the budget's limit, cut at the zoo networks within the "
        "budget; and per zoo network, the searched candidates at no more latency: the fastest, "
        "and the most accurate against the zoo network (two-proportion test on the validation "
        "split, Welch's over seeds where both have several).",
        "",
        *data.coverage.markdown(),
    ]
