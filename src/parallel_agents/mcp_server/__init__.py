"""pa as an MCP server (issue 18): the tools and resources an agent uses to lead others.

The tools are written once, against ``backend.Backend``: a way to call pa's REST API.
`pa mcp` (stdio) gives them a backend over ``client.Client``, as the CLI talks to the
server; the server's ``/mcp`` (streamable HTTP) gives them one over its own ASGI app, so
both answer with the very routes, rules and errors of ``/api/v1``. This package sits
below ``server/`` (which mounts it) and above ``sessions/``; it imports neither.

Nothing here is imported by `pa ls`: the MCP SDK loads only when an MCP server runs.
"""
