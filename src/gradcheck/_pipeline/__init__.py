"""The pipeline of a check: plan, estimate, settle and report, the same for every mode.

`run` is the one entry (`_run`); a check's `Subject` (`_subject`) says what it is about.
The plan of noise and steps is `_plan`; the modes are `_coordinates` (full, sample) and
`_directional` (directional, bisect); `_report` assembles the Report.
"""

from ._run import LONG_CHECK as LONG_CHECK
from ._run import run as run
from ._subject import Subject as Subject

__all__ = ["LONG_CHECK", "Subject", "run"]
