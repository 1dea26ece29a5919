"""Tests that need 8 simulated devices (a package, so that its conftest has its own module name)."""
