"""The typing suite (see README "Type checking your models"): ``models.py`` is the
model file whose stubs ``nnx.stubgen`` writes under ``stubs/``; ``pass/`` must
check clean, ``fail/`` errors exactly where marked, ``plugin/`` holds the mypy
plugin's expected messages."""
