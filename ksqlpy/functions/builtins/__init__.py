"""The built-in function catalogue; every module here is imported when a registry is built."""
