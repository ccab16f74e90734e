"""python -m batcher."""

from batcher.cli.main import entry

entry()
