"""Framework adapters: turn PyTorch and JAX modules and functions into what the core checks.

Only this package and the public opt-in modules `gradcheck.torch` and `gradcheck.jax`
import a framework; the core never does. Each adapter makes private float copies of
the parameters, hands the engine NumPy arrays to perturb in place (views of the
copies where the framework allows it), and computes the analytic gradient with the
framework's own autodiff, so custom backward rules are what gets checked.
"""
