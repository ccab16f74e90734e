"""python -m batcher."""

from batcher.cli import entry

entry()
