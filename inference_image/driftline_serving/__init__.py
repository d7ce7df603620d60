"""The inference image's package: the FastAPI model server, its runtimes, log writer and router."""
