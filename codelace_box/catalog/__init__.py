"""The operator's catalog: upstream providers, their keys and key checks, priced model ids."""
