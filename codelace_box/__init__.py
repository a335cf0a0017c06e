"""codelace-box: a self-hosted LLM gateway for a team, shipped as one executable."""

__version__ = "0.1.0"
