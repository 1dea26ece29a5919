"""The error codes of the nnx mypy plugin, one per check.

Each can be silenced on a line with ``# type: ignore[<code>]`` or for a whole
project with ``disable_error_code = ["<code>"]`` in the mypy configuration.
"""

from __future__ import annotations

from mypy.errorcodes import ErrorCode

STATE_PATH = ErrorCode("nnx-state-path", "A State path that the module does not have", "nnx")
FILTERED_OUT = ErrorCode("nnx-filtered-out", "A State path that the filter removed", "nnx")
COLLECTION = ErrorCode("nnx-collection", "A collection string that no Variable kind declares", "nnx")
NOT_A_FILTER = ErrorCode("nnx-filter", "A value that is not a filter", "nnx")
UNMATCHED_FILTER = ErrorCode(
    "nnx-unmatched-filter", "A filter that matches no state of the module (a warning: disable if unwanted)", "nnx"
)
SPLIT_UNMATCHED = ErrorCode("nnx-split-unmatched", "nnx.split leaves state unmatched by every filter", "nnx")
WRT = ErrorCode("nnx-wrt", "A grad wrt= filter that matches nothing in the differentiated module", "nnx")
STATE_MISMATCH = ErrorCode("nnx-state-mismatch", "A State of another module class", "nnx")
