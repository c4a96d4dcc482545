"""The HTTP surface: thin routers, auth dependencies, response schemas, error mapping."""
