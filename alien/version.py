"""The library's version, in a module of its own so that components need not import the package."""

__version__ = "0.1.0"
