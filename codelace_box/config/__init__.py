"""Configuration: codelace.toml plus CODELACE_<SECTION>_<KEY> overrides, as frozen dataclasses.

Every key is optional and has a built-in default. An unknown key, a wrong type or a bad value
raises `ConfigError` with one line naming the source (file or variable), the key and what was
expected. `schema` holds the sections, `loading` reads and validates them, `rules` checks keys
that depend on each other, `example` renders the commented file `init` writes, `secret` keeps
the generated server secret in the data directory.
"""

from codelace_box.config.example import init_config_text, render_example, write_initial_config
from codelace_box.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    build_config,
    load_config,
    resolve_config_path,
)
from codelace_box.config.schema import (
    SECTIONS,
    AuthConfig,
    Config,
    DatabaseConfig,
    EmailConfig,
    GatewayConfig,
    LimitsConfig,
    PortalConfig,
    ServerConfig,
    StripeConfig,
)
from codelace_box.config.secret import ensure_secret_key, existing_secret_key

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "SECTIONS",
    "AuthConfig",
    "Config",
    "DatabaseConfig",
    "EmailConfig",
    "GatewayConfig",
    "LimitsConfig",
    "PortalConfig",
    "ServerConfig",
    "StripeConfig",
    "build_config",
    "ensure_secret_key",
    "existing_secret_key",
    "init_config_text",
    "load_config",
    "render_example",
    "resolve_config_path",
    "write_initial_config",
]
