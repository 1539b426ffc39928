"""How to find good nets: datasets, accuracy proxies, training, and the search.

Imports point one way: searchspace <- latency_tables <- nas <- service. torch
is imported only by the modules that build or run a model.
"""
