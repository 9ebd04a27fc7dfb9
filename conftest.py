"""Leave out the doctests of modules whose framework is not installed."""

import importlib.util

_FRAMEWORK_MODULES = {
    "torch": [
        "src/gradcheck/torch.py",
        "src/gradcheck/_adapters/_torch.py",
        "src/gradcheck/_adapters/_torch_function.py",
    ],
    "jax": ["src/gradcheck/jax.py", "src/gradcheck/_adapters/_jax.py"],
}
collect_ignore = [
    path
    for module, paths in _FRAMEWORK_MODULES.items()
    if importlib.util.find_spec(module) is None
    for path in paths
]
