"""HTML export of executed report notebooks: one self-contained file a reader can open offline.

Used by :mod:`custvalue.reports.runner`. The exporter is nbconvert's ``lab`` template with the code
cells and prompts removed, every script that would come from a CDN (require.js, MathJax, mermaid)
dropped, figures embedded as base64 PNG, and three additions of our own: a header that says what
was run (report, parameters, data provenance, versions, timings), a linked table of contents built
from the notebook's headings, and a footer with the data-quality summary.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nbformat takes seconds to import; only the export needs it
    import nbformat

__all__ = [
    "add_table_of_contents",
    "export_notebook_html",
    "external_references",
    "render_footer",
    "render_header",
]

# The lab template without anything loaded from the network. Markdown is rendered to HTML by
# nbconvert at export time, so MathJax is not needed; our reports draw no mermaid diagrams and
# use no widgets, and nothing in the page needs require.js.
_TEMPLATE_NAME = "custvalue_report.html.j2"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""

_CSS = """
<style type="text/css">
body.cv-report { max-width: 1180px; margin: 0 auto; padding: 0 24px 48px 24px; }
.cv-header { border-bottom: 2px solid #2b4c7e; margin: 24px 0 12px 0; padding-bottom: 12px;
  font-family: var(--jp-ui-font-family, sans-serif); }
.cv-header h1 { margin: 0 0 4px 0; font-size: 1.9em; color: #2b4c7e; }
.cv-header .cv-sub { color: #555; margin-bottom: 10px; }
.cv-header details { margin: 6px 0; }
.cv-header summary { cursor: pointer; font-weight: 600; }
.cv-meta { border-collapse: collapse; font-size: 0.9em; margin: 4px 0 8px 0; }
.cv-meta th { text-align: left; padding: 2px 14px 2px 0; color: #444; vertical-align: top;
  font-weight: 600; white-space: nowrap; }
.cv-meta td { padding: 2px 0; font-family: var(--jp-code-font-family, monospace); }
.cv-toc { background: #f5f7fb; border: 1px solid #dde3ee; border-radius: 6px; padding: 8px 18px;
  margin: 12px 0 20px 0; font-family: var(--jp-ui-font-family, sans-serif); }
.cv-toc h2 { font-size: 1.1em; margin: 4px 0; }
.cv-toc ol { margin: 0; padding-left: 20px; }
.cv-toc li.cv-toc-3 { margin-left: 18px; font-size: 0.95em; }
.cv-footer { border-top: 2px solid #2b4c7e; margin-top: 36px; padding-top: 10px; font-size: 0.9em;
  font-family: var(--jp-ui-font-family, sans-serif); }
.cv-footer table { border-collapse: collapse; }
.cv-footer th, .cv-footer td { border: 1px solid #ccd; padding: 2px 8px; text-align: left; }
.cv-failed-banner { background: #fbe9e9; border: 1px solid #d66; padding: 8px 12px; margin: 12px 0;
  font-family: var(--jp-ui-font-family, sans-serif); }
</style>
"""

_HEADING_RE = re.compile(r"<h([1-3])(\s[^>]*)?\bid=\"([^\"]+)\"([^>]*)>(.*?)</h\1>", re.S | re.I)
_TAG_RE = re.compile(r"<[^>]+>")
_ANCHOR_RE = re.compile(r"<a class=\"anchor-link\"[^>]*>.*?</a>", re.S)
_EXTERNAL_RE = re.compile(
    r"<(script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*((?:https?:)?//[^\"'\s>]+)",
    re.I,
)
_CSS_IMPORT_RE = re.compile(r"@import\s+(?:url\()?[\"']?((?:https?:)?//[^\"')\s]+)", re.I)


def _strip_for_report(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what a report reader should not see: stderr streams (warnings) and tagged cells."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "remove-cell" in tags or "injected-parameters" in tags or "parameters" in tags:
            continue
        if cell.cell_type == "code":
            cell.outputs = [
                _with_alt_text(out)
                for out in cell.get("outputs", [])
                if not (out.get("output_type") == "stream" and out.get("name") == "stderr")
            ]
        cells.append(cell)
    nb.cells = cells
    return nb


def _with_alt_text(output: Any) -> Any:
    """Turn a PNG output that carries ``alt`` metadata into an ``<img>`` with that alt text.

    nbconvert ignores output metadata and writes a placeholder alt; see
    :func:`custvalue.reports.show_figure`, which puts the figure's titles there.
    """
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    data = output.get("data", {})
    if not alt or "image/png" not in data or "text/html" in data:
        return output
    png = "".join(data["image/png"]) if isinstance(data["image/png"], list) else data["image/png"]
    png = png.replace("\n", "")
    output = copy.deepcopy(output)
    output["data"] = {
        "text/html": f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt, quote=True)}">',
        "text/plain": data.get("text/plain", "<figure>"),
    }
    return output


def export_notebook_html(
    nb: nbformat.NotebookNode,
    *,
    include_code: bool,
    title: str,
    header_html: str = "",
    footer_html: str = "",
    banner_html: str = "",
) -> str:
    """Convert an executed notebook to one self-contained HTML string.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed notebook (not modified).
    include_code : bool
        False for the shareable report (no code cells, no prompts, no stderr, parameters cells
        removed); True for the failed-run page, where the code and the traceback are the point.
    title : str
        Text of the ``<title>`` element.
    header_html, footer_html, banner_html : str
        HTML inserted right after ``<body>`` (banner, header, then the table of contents) and
        right before ``</body>`` (footer).

    Returns
    -------
    str
        The page. Images are base64 ``data:`` URIs; nothing is loaded from the network.
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        embed_images=True,
        exclude_input=not include_code,
        exclude_input_prompt=not include_code,
        exclude_output_prompt=not include_code,
        theme="light",
    )
    work = nb if include_code else _strip_for_report(nb)
    work = copy.deepcopy(work)
    work.metadata["title"] = title
    body, _ = exporter.from_notebook_node(work)
    body = _drop_external_scripts(body)
    body, toc_entries = add_table_of_contents(body)
    toc_html = render_toc(toc_entries)
    insert = _CSS + banner_html + header_html + toc_html
    body = re.sub(r"<body([^>]*)>", lambda m: _body_open(m.group(1)) + insert, body, count=1)
    body = body.replace("</body>", footer_html + "</body>", 1)
    return body


def _body_open(attrs: str) -> str:
    if "class=" in attrs:
        return "<body" + re.sub(r'class="([^"]*)"', r'class="\1 cv-report"', attrs, count=1) + ">"
    return f'<body{attrs} class="cv-report">'


def _drop_external_scripts(page: str) -> str:
    """Remove any ``<script src=http...>`` / ``<link href=http...>`` the template still emits."""
    page = re.sub(
        r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>", "", page, flags=re.I
    )
    page = re.sub(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", "", page, flags=re.I)
    return page


def external_references(page: str) -> list[str]:
    """URLs the page would fetch from the network (scripts, stylesheets, images, frames, @import).

    Plain ``<a href="https://...">`` links are not counted: following them is the reader's
    choice and the page renders without them.
    """
    found = [m.group(2) for m in _EXTERNAL_RE.finditer(page)]
    found += [m.group(1) for m in _CSS_IMPORT_RE.finditer(page)]
    return found


def add_table_of_contents(page: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Make heading ids unique and return the page with ``(level, id, text)`` for h1-h3.

    nbconvert gives every markdown heading an id derived from its text; two headings with the
    same text would share an id, so later ones get a ``-2``, ``-3`` suffix (their anchor links too).
    """
    seen: dict[str, int] = {}
    entries: list[tuple[int, str, str]] = []

    def fix(match: re.Match[str]) -> str:
        level, before, hid, after, inner = match.groups()
        n = seen.get(hid, 0) + 1
        seen[hid] = n
        new_id = hid if n == 1 else f"{hid}-{n}"
        if n > 1:
            inner = inner.replace(f'href="#{hid}"', f'href="#{new_id}"')
        text = html.unescape(_TAG_RE.sub("", _ANCHOR_RE.sub("", inner))).strip()
        if text:
            entries.append((int(level), new_id, text))
        return f'<h{level}{before or ""} id="{new_id}"{after}>{inner}</h{level}>'

    return _HEADING_RE.sub(fix, page), entries


def render_toc(entries: Sequence[tuple[int, str, str]]) -> str:
    """A linked table of contents for level-2 and level-3 headings (level 1 is the title)."""
    items = [e for e in entries if e[0] in (2, 3)]
    if not items:
        return ""
    lis = "\n".join(
        f'<li class="cv-toc-{level}"><a href="#{html.escape(hid, quote=True)}">'
        f"{html.escape(text)}</a></li>"
        for level, hid, text in items
    )
    return f'<nav class="cv-toc" id="cv-toc"><h2>Contents</h2><ol>\n{lis}\n</ol></nav>\n'


def _table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    return f'<table class="cv-meta">{body}</table>'


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "[]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_header(
    *,
    title: str,
    subtitle: str,
    run: Mapping[str, Any],
    parameters: Mapping[str, Any],
    data: Mapping[str, Any] | None,
    versions: Mapping[str, str],
) -> str:
    """The report header: what was run, on which data, with which code, when and how long."""
    parts = [
        '<header class="cv-header" id="cv-header">',
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="cv-sub">{html.escape(subtitle)}</div>',
        _table(run.items()),
    ]
    if data:
        parts.append("<details open><summary>Data source</summary>")
        parts.append(_table(data.items()))
        parts.append("</details>")
    parts.append("<details><summary>Parameters</summary>")
    parts.append(_table(parameters.items()))
    parts.append("</details>")
    parts.append("<details><summary>Package versions</summary>")
    parts.append(_table(versions.items()))
    parts.append("</details>")
    parts.append("</header>")
    return "\n".join(parts)


def render_footer(quality_html: str, note: str = "") -> str:
    """The report footer with the data-quality summary (already-rendered, escaped HTML)."""
    return (
        '<footer class="cv-footer" id="cv-data-quality">'
        "<h3>Data quality</h3>"
        f"{quality_html}"
        f"<p>{html.escape(note)}</p>"
        "</footer>"
    )
