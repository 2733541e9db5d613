"""The package version, in a module of its own so that any part can read it without
importing the package root (which hands on the API, the top layer)."""

__version__ = "0.1.0"
