"""Framework adapters: turn framework modules and functions into what the core checks.

The frameworks are listed in `gradcheck._frameworks`. Only this package and the public
opt-in modules (`gradcheck.torch`, `gradcheck.jax`, `gradcheck.autograd`) import a
framework; the core never does. `bridge.Adapter` is what every adapter hands the
core; `vjp.FunctionAdapter` is what every function check shares (output collection,
upstreams, the projection, the gradient). Each adapter makes private float copies of
the parameters, hands the engine NumPy arrays to perturb in place (views of the
copies where the framework allows it), and computes the analytic gradient with the
framework's own autodiff, so custom backward rules are what gets checked.
"""

from .._scalar import at_base as at_base
from .bridge import framework_options as framework_options
from .bridge import require_float_dtype as require_float_dtype
from .bridge import run_check as run_check
from .pytree_function import check_pytree_function as check_pytree_function

__all__ = [
    "at_base",
    "check_pytree_function",
    "framework_options",
    "require_float_dtype",
    "run_check",
]
