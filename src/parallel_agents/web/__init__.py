"""The dashboard's files (templates/, static/) and its one-time login links.

Only the standard library is imported here: ``pa up`` issues a login link without
loading FastAPI. The routes that serve the dashboard are in ``server/routes/web.py``.
"""
