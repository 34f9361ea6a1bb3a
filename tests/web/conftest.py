"""Shared fixtures of the web tests."""
