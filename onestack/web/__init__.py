"""Websites: the http and https modules."""
