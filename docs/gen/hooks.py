"""MkDocs hooks for the tutorial notebooks.

- The nav in ``mkdocs.yml`` names every planned notebook; one that is not in ``docs/`` yet
  is dropped (and said so at INFO level) instead of failing ``mkdocs build --strict``.
  Every other nav entry is left to MkDocs' own validation.
- The notebooks' TeX (``$...$``, ``$$...$$`` in markdown cells) is converted to MathML at
  build time (latex2mathml), which browsers render natively: no MathJax from a CDN, so
  the site works offline. TeX that does not convert is a warning (a strict build fails).
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.gradcheck")


def _prune(items: list[Any], docs_dir: Path, missing: list[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(value, list):
            value = _prune(value, docs_dir, missing)
            if value:
                kept.append({title: value})
        elif (
            isinstance(value, str) and value.endswith(".ipynb") and not (docs_dir / value).is_file()
        ):
            missing.append(value)
        else:
            kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    """Drop the notebooks that are missing from the nav."""
    missing: list[str] = []
    if config["nav"]:
        config["nav"] = _prune(config["nav"], Path(config["docs_dir"]), missing)
    for path in missing:
        log.info("%s does not exist yet: left out of the nav", path)
    return config


# The rendered markdown cells of a notebook page (mkdocs-jupyter / nbconvert's lab template).
_MARKDOWN_CELL = re.compile(
    r'(<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown[^"]*"[^>]*>)(.*?)(</div>)', re.DOTALL
)
_CODE = re.compile(r"(<code\b.*?</code>|<pre\b.*?</pre>)", re.DOTALL)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$([^$\n]+?)\$")


def _mathml(tex: str, display: str, where: str) -> str:
    from latex2mathml.converter import convert

    source = html.unescape(tex).strip()
    try:
        return str(convert(source, display=display))
    except Exception as error:  # latex2mathml raises many kinds
        log.warning("%s: cannot convert the TeX %r to MathML (%s)", where, source, error)
        return tex


def _convert_text(text: str, where: str) -> str:
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside <code>/<pre>
        part = _DISPLAY.sub(lambda m: _mathml(m.group(1), "block", where), parts[i])
        parts[i] = _INLINE.sub(lambda m: _mathml(m.group(1), "inline", where), part)
    return "".join(parts)


def on_page_content(html_text: str, page: Any, **_: Any) -> str:
    """Replace the TeX of a notebook page's markdown cells with MathML."""
    if not page.file.src_uri.endswith(".ipynb"):
        return html_text
    where = page.file.src_uri
    return _MARKDOWN_CELL.sub(
        lambda m: m.group(1) + _convert_text(m.group(2), where) + m.group(3), html_text
    )
