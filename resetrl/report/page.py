"""The report as one self-contained HTML file: CSS, script, data and pictures inline, nothing fetched.

Everything from the run (model text above all) is escaped: text in the HTML goes through
`html.escape`, the data travels as JSON in a `<script type="application/json">` block with `<`, `>`
and `&` escaped, and the script puts it on the page as text nodes only."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from importlib import resources
from pathlib import Path

from resetrl.groups import TOKEN_KINDS
from resetrl.report.data import COMPARE_EXPLORER_MAX_BYTES, compare_runs, folder_kind, run_data

REPORT_NAME = "report.html"


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run or compare folder (default: FOLDER/report.html); returns its path."""
    folder = Path(folder)
    page = build_page(folder)
    path = Path(out) if out else folder / REPORT_NAME
    partial = path.with_name(path.name + ".partial")  # never a half-written report in its place
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


def write_report_or_warn(folder: str | Path) -> Path | None:
    """The report at the end of a run: a by-product, so any failure is printed, never raised."""
    try:
        return write_report(folder)
    except Exception as error:  # noqa: BLE001 - the run's results are already safe on disk
        print(f"resetrl: warning: {folder}/{REPORT_NAME} not written ({type(error).__name__}: {error}); "
              f"`resetrl report {folder}` retries")
        return None


def build_page(folder: Path) -> str:
    return compare_page(folder) if folder_kind(folder) == "compare" else run_page(folder)


# -- pieces -------------------------------------------------------------------------------------------

def _finite(value):
    """NaN and infinities as null: JSON.parse rejects them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def script_json(data) -> str:
    """JSON safe inside <script>: no `</script>`, `<!--` or entity can end or bend the block."""
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN somewhere (rare): the slower walk that replaces them
        text = json.dumps(_finite(data), separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _image(path: Path, alt: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="curves" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _colors() -> dict[str, str]:
    """The comparison plots' method colours, so the page's lines match curves.png."""
    from matplotlib.colors import to_hex

    from resetrl.compare.plots import COLORS

    return {method: to_hex(color) for method, color in COLORS.items()}


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def markdown_to_html(text: str) -> str:
    """The Markdown that compare/report.py writes (headings, bullets, pipe tables, paragraphs); headings
    move one level down under the page's own title."""
    out, table, bullets = [], [], []

    def flush():
        if table:
            head, *body = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table
                           if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*", row.strip())]
            out.append("<div class=\"scroll\"><table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</table></div>")
            table.clear()
        if bullets:
            out.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in bullets) + "</ul>")
            bullets.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            bullets.append(line[2:])
            continue
        flush()
        heading = re.match(r"(#+) (.*)", line)
        if heading:
            level = min(len(heading.group(1)) + 1, 6)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


def _document(title: str, body: str, data: dict) -> str:
    css = (resources.files("resetrl.report") / "page.css").read_text()
    script = (resources.files("resetrl.report") / "page.js").read_text()
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title>\n<style>\n{css}</style></head>\n<body>\n{body}\n"
            f"<script type=\"application/json\" id=\"report-data\">{script_json(data)}</script>\n"
            f"<script>\n{script}</script>\n</body></html>\n")


CHART = ('<div class="chart-box"><div id="chart"></div><div><label>metric <select id="metric-picker"></select></label>'
         '<p class="muted">Any logged metric against the step (the picture above draws the held-out accuracy).</p></div></div>')

EXPLORER = ('<h2>Rollout explorer</h2><p class="muted">One problem at one step: the fresh group, each parent '
            '(a failed chain, not trained) with its reset step and localization answer, its reset continuations '
            'with reward and advantage, and the task\'s first error where it knows it.</p>'
            '<div class="filters" id="filters"></div><div class="muted" id="item-count"></div>'
            '<div class="explorer"><div class="item-list" id="item-list"></div>'
            '<div class="detail" id="detail"><p class="muted">Choose a problem on the left.</p></div></div>')


# What the explorer's tags mean (its legend); a tag not listed here is shown without a meaning.
TAG_MEANINGS = {
    "signal": "a group of this problem-step had mixed rewards, so its advantages are not all 0 and it trained",
    "random": "RRPO: the reset thought drawn uniformly from the failed chain's thoughts",
    "oracle": "the task's true first error",
    "oracle:unknown->1": "the task could not tell the first error; reset from thought 1",
    "self:boxed": "SRPO: the model's own localization answer, a thought number in range",
    "self:clamped": "SRPO: the model named a thought number outside the chain; clamped to the nearest thought",
    "self:unparsed->1": "SRPO: no thought number in the model's localization answer; reset from thought 1",
    "self:no_error->1": "SRPO: the model said no thought is wrong; reset from thought 1",
    "self:call_failed->1": "SRPO: the localization call failed; reset from thought 1",
    "empty->1": "the failed chain had no thoughts; reset from thought 1",
}


def tag_legend(items: list[dict]) -> str:
    """The meaning of every tag the explorer shows for these items."""
    tags = (["signal"] if any(item["signal"] for item in items) else []) + sorted(
        {source for item in items for source in item["sources"]})
    entries = "".join(f"<dt><span class=\"badge\">{html.escape(tag)}</span></dt><dd>"
                      f"{html.escape(TAG_MEANINGS.get(tag, 'a reset source (resetrl/resets.py names each)'))}</dd>"
                      for tag in tags)
    return f'<details class="legend"><summary>what the tags mean</summary><dl>{entries}</dl></details>' if tags else ""


def run_totals(metrics: list[dict], items: list[dict]) -> list[tuple[str, str]]:
    """The header's cost figures: wall time, tokens, peak memory, and how many chains have an
    empty thought (a thought the model closed without writing anything)."""
    def total(*keys: str) -> float:
        return sum(row.get(key, 0.0) for row in metrics for key in keys)

    facts = []
    seconds = total("time/step", "time/eval", "time/warmup")
    if seconds:
        facts.append(("wall time", f"{seconds / 60:.1f} min (steps, evaluations and warm-up; model loading not counted)"))
    generated = total(*(f"tokens/{kind}" for kind in TOKEN_KINDS))
    if generated:
        facts.append(("tokens", f"{generated:,.0f} generated, {total('update/trained_tokens'):,.0f} trained"))
    peak = max((row["memory/peak_rss_gb"] for row in metrics if "memory/peak_rss_gb" in row), default=None)
    if peak is not None:
        facts.append(("peak memory", f"{peak:.2f} GB resident"))
    chains = [chain for item in items for chain in item["chains"]]
    if chains:
        empty = sum(any(not (text or "").strip() for text in chain["thoughts"] or []) for chain in chains)
        facts.append(("rollouts", f"{len(chains):,} chains, {empty:,} with an empty thought"))
    return facts


# The run page's picture (curves.png) already draws these; its chart starts on another metric.
DRAWN_IN_CURVES = ("eval/accuracy", "reward/fresh", "reward/reset")
CHART_FIRST = ("reward/all_trained", "update/loss", "eval/accuracy")


def _generated() -> str:
    return f'<p class="muted">Written by <code>resetrl report</code> on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}.</p>'


# -- the two pages --------------------------------------------------------------------------------------

def run_page(run_dir: Path) -> str:
    data = run_data(run_dir)
    run, config = data["run"], data["run"]["config"]
    evals = [(row["step"], row["eval/accuracy"]) for row in run["metrics"] if "eval/accuracy" in row]
    task = config.get("task") or {}
    facts = [("method", run["method"]), ("model", (config.get("model") or {}).get("name", "?")),
             ("task", f"{task.get('name', '?')} {task.get('options') or ''}"),
             ("steps", f"{len([r for r in run['metrics'] if r.get('step', 0) > 0])} of "
                       f"{(config.get('train') or {}).get('steps', '?')} logged")]
    if evals:
        facts.append(("held-out accuracy", " \u2192 ".join(f"{value:.3f} (step {step})" for step, value in
                                                           (evals[:1] + evals[-1:] if len(evals) > 1 else evals))))
    facts += run_totals(run["metrics"], data["items"])
    body = [f"<h1>resetrl run: {html.escape(run_dir.resolve().name)}</h1>",
            "<ul>" + "".join(f"<li>{html.escape(key)}: {html.escape(str(value))}</li>" for key, value in facts) + "</ul>"]
    body += [f'<div class="note">{html.escape(note)}</div>' for note in run["notes"]]
    body.append("<h2>Learning curves</h2>")
    curves = run_dir / "curves.png"
    if not curves.exists() and run["metrics"]:  # a run still going: the trainer draws it at the end
        from resetrl.plots import plot_run

        try:
            plot_run(run_dir)
        except Exception as error:  # noqa: BLE001 - the chart below still shows every metric
            body.append(f'<div class="note">curves.png could not be drawn ({html.escape(repr(error))})</div>')
    if curves.exists():
        body.append(_image(curves, "held-out accuracy and training reward against step"))
    body.append(CHART)
    body.append('<h2>Metrics</h2><div id="metrics-summary"></div>'
                '<details id="metrics-steps"><summary>every step</summary></details>')
    if (run_dir / "config.yaml").exists():
        body.append(f"<details><summary>config.yaml</summary><pre>{html.escape((run_dir / 'config.yaml').read_text())}</pre></details>")
    body.append(EXPLORER + tag_legend(data["items"]) if data["items"]
                else "<h2>Rollout explorer</h2><p>No rollouts logged yet (rollouts.jsonl).</p>")
    body.append(_generated())
    page_data = {"kind": "run", "colors": _colors(),
                 "runs": [{"name": run["name"], "method": run["method"], "metrics": run["metrics"]}],
                 "items": data["items"], "chart_first": [m for m in CHART_FIRST if m not in DRAWN_IN_CURVES]}
    return _document(f"resetrl run {run_dir.resolve().name}", "\n".join(body), page_data)


def compare_page(folder: Path) -> str:
    results, runs = compare_runs(folder)
    present = [(series, method, run_dir) for series, method, run_dir in runs if run_dir.is_dir()]
    rollout_bytes = sum((run_dir / "rollouts.jsonl").stat().st_size for _, _, run_dir in present
                        if (run_dir / "rollouts.jsonl").exists())
    with_rollouts = rollout_bytes <= COMPARE_EXPLORER_MAX_BYTES
    page_runs, items = [], []
    for index, (series, method, run_dir) in enumerate(present):
        one = run_data(run_dir, index, run_dir.name, with_rollouts)
        report = run_dir / REPORT_NAME
        page_runs.append({"name": run_dir.name, "method": series, "metrics": one["run"]["metrics"],
                          "report": report.relative_to(folder).as_posix() if report.exists() else None})
        items += one["items"]

    body = [f"<h1>resetrl comparison: {html.escape(folder.resolve().name)}</h1>"]
    results_md = folder / "results.md"
    if results_md.exists():
        body.append(markdown_to_html(results_md.read_text()))
    elif results.get("summary", {}).get("series"):
        from resetrl.compare.report import markdown_report

        body.append(markdown_to_html(markdown_report(results["summary"], results.get("setup", {}))))
    body.append("<h2>Curves</h2>")
    if (folder / "curves.png").exists():
        body.append(_image(folder / "curves.png", "accuracy against generated tokens and steps"))
    body.append(CHART)
    rows = []
    for run in page_runs:
        accuracy = [row["eval/accuracy"] for row in run["metrics"] if "eval/accuracy" in row]
        link = (f'<a href="{html.escape(run["report"])}">report</a>' if run["report"]
                else '<span class="muted">no report.html</span>')
        final = f"{accuracy[-1]:.3f}" if accuracy else "-"
        rows.append(f"<tr><td>{html.escape(run['name'])}</td><td>{html.escape(run['method'])}</td>"
                    f"<td>{final}</td><td>{link}</td></tr>")
    body.append("<h2>Runs</h2><table><tr><th>run</th><th>series</th><th>final accuracy</th><th>report</th></tr>"
                + "".join(rows) + "</table>")
    missing = len(runs) - len(present)
    if missing:
        body.append(f'<div class="note">{missing} run folder(s) listed in results.json are missing.</div>')
    if not with_rollouts:
        body.append(f'<h2>Rollout explorer</h2><p class="note">The runs\' rollouts ({rollout_bytes / 1e6:.0f} MB) are too '
                    "many for one page; each run's report above has its own explorer.</p>")
    elif items:
        body.append(EXPLORER + tag_legend(items))
    body.append(_generated())
    # curves.png draws accuracy against tokens and steps: the chart starts on the training reward.
    page_data = {"kind": "compare", "colors": _colors(), "runs": page_runs, "items": items,
                 "chart_first": [m for m in CHART_FIRST if m != "eval/accuracy"]}
    return _document(f"resetrl comparison {folder.resolve().name}", "\n".join(body), page_data)
