"""Shared test helpers, one concept per module; tests import them as `helpers.<module>`.

pytest puts tests/ on sys.path (it holds conftest.py and no __init__.py), so this package
is importable from every test module and from conftest.py, which keeps only fixtures.
"""
