"""Renderers of a `Report`: terminal (rich), JSON, HTML, notebook. Each only reads the model.

Every renderer takes a `gradcheck._results.Report` and nothing else: this package imports
nothing from the engine or the diagnosis. Helpers the renderers share live in `_common`.
"""

from ._common import Renderer as Renderer
from ._html import render_html as render_html
from ._json import report_from_dict as report_from_dict
from ._json import report_to_dict as report_to_dict
from ._json import report_to_json as report_to_json
from ._notebook import pretty as pretty
from ._notebook import render_notebook as render_notebook
from ._terminal import render as render
from ._terminal import render_text as render_text

__all__ = [
    "Renderer",
    "pretty",
    "render",
    "render_html",
    "render_notebook",
    "render_text",
    "report_from_dict",
    "report_to_dict",
    "report_to_json",
]
