"""The ``driftline`` command line: one entry point over the images' packages."""
