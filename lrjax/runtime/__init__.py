"""The runtime a config runs under: convolution path, thread counts, XLA:CPU and memory settings,
devices, preemption. Nothing here trains; `setup` applies `config.runtime` (see `setup` and
`spec`), and every run records the resolved `Runtime` it ran under.
"""

from lrjax.runtime.setup import Runtime as Runtime
from lrjax.runtime.setup import setup as setup
from lrjax.runtime.spec import RuntimeMismatch as RuntimeMismatch
from lrjax.runtime.spec import Spec as Spec

__all__ = ["Runtime", "RuntimeMismatch", "Spec", "setup"]
