"""The Litestar promise service, live state and the command line."""
