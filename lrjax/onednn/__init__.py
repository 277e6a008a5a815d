"""CPU convolutions through oneDNN, called from XLA by its FFI.

`Convolution(threads, bf16)` is a drop-in for `lax.conv_general_dilated` (and for flax's
`nn.Conv(conv_general_dilated=...)`); `build.load()` compiles and registers the handlers, or says
why it cannot. Whether a model uses it is the runtime's choice (`config.runtime.convolutions`,
see `lrjax.runtime`). oneDNN 3.2 for CPUs comes with `pip install 'lrjax[train]'` on Linux x86-64
(or `'lrjax[onednn-cpu]'`).
"""

from lrjax.onednn.conv import Convolution as Convolution

__all__ = ["Convolution"]
