"""The runtime a config runs under: convolution path, thread counts, XLA:CPU and memory settings,
devices, preemption. Nothing here trains; `setup` applies `config.runtime` to the process once,
at its entry point, `for_run` gives each run its `Runtime` without changing anything, and every
run records the resolved `Runtime` it ran under.
"""

from lrjax.runtime.setup import Runtime as Runtime
from lrjax.runtime.setup import RuntimeNotSetUp as RuntimeNotSetUp
from lrjax.runtime.setup import active as active
from lrjax.runtime.setup import for_run as for_run
from lrjax.runtime.setup import setup as setup
from lrjax.runtime.spec import RuntimeMismatch as RuntimeMismatch
from lrjax.runtime.spec import Spec as Spec

__all__ = ["Runtime", "RuntimeMismatch", "RuntimeNotSetUp", "Spec", "active", "for_run", "setup"]
