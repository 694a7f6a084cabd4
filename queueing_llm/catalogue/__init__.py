"""Built-in theorems, one module per family of the model chapter, section 5; importing registers them."""

from . import capacity, dynamics, dynamics_integer, dynamics_open, fluid, mixing, queue  # noqa: F401  (registration side effects)
