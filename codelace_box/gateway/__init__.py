"""The gateway: model routing, upstream calls, streaming relay and metering of each request."""
