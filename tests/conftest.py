"""Shared pytest configuration for django-safemigrate's tests."""
