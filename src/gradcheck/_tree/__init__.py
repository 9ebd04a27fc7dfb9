"""Parameter trees: flatten params into named leaves with offsets, and match grads to them.

`_flat` lays the leaves end to end in one virtual vector theta (`flatten`, `Leaf`,
`FlatParams`); `_names` names them; `_grads` matches the analytic gradient to them.
"""

from ._flat import FlatParams as FlatParams
from ._flat import Leaf as Leaf
from ._flat import ParamTree as ParamTree
from ._flat import copy_arrays as copy_arrays
from ._flat import flatten as flatten
from ._flat import tree_arrays as tree_arrays
from ._grads import flatten_grads as flatten_grads
from ._grads import select_present as select_present
from ._names import ROOT_NAME as ROOT_NAME
from ._names import spell as spell
from ._names import unique_names as unique_names

__all__ = [
    "ROOT_NAME",
    "FlatParams",
    "Leaf",
    "ParamTree",
    "copy_arrays",
    "flatten",
    "flatten_grads",
    "select_present",
    "spell",
    "tree_arrays",
    "unique_names",
]
