"""Leave out the doctests of modules whose framework is not installed.

Which modules need which framework is read from the registry (`gradcheck._frameworks`),
so a new framework is listed in one place.
"""

import importlib.util
from pathlib import Path

from gradcheck._frameworks import FRAMEWORKS

_SRC = Path("src")

collect_ignore = [
    str(_SRC.joinpath(*module.split(".")).with_suffix(".py"))
    for framework in FRAMEWORKS
    if importlib.util.find_spec(framework.module) is None
    for module in framework.modules
]
