"""The gateway benchmark (`make bench`): fake upstream, load generator, figures."""
