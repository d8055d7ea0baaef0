"""Functions: the registry of built-in and user-defined scalar, aggregate and table functions."""
