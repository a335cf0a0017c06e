"""The HTTP API: thin Sanic blueprints over the feature packages."""
