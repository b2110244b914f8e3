"""Driveline's core: domain, flow engine, configuration and command line."""
