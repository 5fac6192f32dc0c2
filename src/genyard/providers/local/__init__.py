"""Providers that run on this machine's CPU, with weights shipped inside packages."""
