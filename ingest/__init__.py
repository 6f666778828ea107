"""Data in: exchange feeds, files and the synthetic generator, normalised at the edge.

This package imports nothing of cryptodb's core: it turns messages and files into Arrow tables
in the shapes of `schema`, and hands them to whatever sink it is given.
"""
