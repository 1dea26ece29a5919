"""``nnx.mypy_plugin``: enable with ``plugins = ["nnx.mypy_plugin"]`` in the mypy configuration.

The plugin itself lives in the top-level package ``nnx_mypy``, which imports
nothing but mypy: loading it as ``plugins = ["nnx_mypy"]`` skips this
package's ``__init__`` (and with it the import of JAX), about a second and a
half per mypy run. Both spellings load the same plugin.
"""

from nnx_mypy import NnxPlugin, plugin

__all__ = ["NnxPlugin", "plugin"]
