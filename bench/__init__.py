"""Sandcat's bench suite: load scenarios, results as JSON and PNG, comparisons.

Run ``python -m bench --help``; ``nox -s bench`` runs the standard set.
"""
