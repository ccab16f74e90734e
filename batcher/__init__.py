"""batcher: change the registration status of many Constant Contact event registrations from a CSV."""

__version__ = "0.1.0"
