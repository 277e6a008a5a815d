"""CPU convolutions through oneDNN, called from XLA by its FFI; XLA's convolution otherwise.

`conv_general_dilated` is a drop-in for `lax.conv_general_dilated` (and for flax's
`nn.Conv(conv_general_dilated=...)`, as `lrjax.models` uses it). `status()` says in one line
which path this process runs. Install with `pip install 'lrjax[onednn]'`; `LRJAX_ONEDNN=0` turns it
off.
"""

from lrjax.onednn.conv import conv_general_dilated as conv_general_dilated
from lrjax.onednn.path import status as status

__all__ = ["conv_general_dilated", "status"]
