"""The database: connection and pragmas (core), schema (models), migrations (migrate)."""
