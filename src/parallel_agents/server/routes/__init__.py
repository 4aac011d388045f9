"""The server's routes, one module per resource; ``server.app`` includes every router.

Handlers are plain ``def`` where they touch the store: FastAPI runs them on worker
threads, and each thread uses its own store (``ServerState.app()``) because a SQLite
connection is single-threaded.
"""
