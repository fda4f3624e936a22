"""Checks that run in CI (and locally) on the project's own configuration files."""
