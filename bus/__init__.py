"""The bus: message contracts, key naming, clock, Redis connections and stream workers.

Every stage meets every other stage only through what this package defines.
It imports nothing else of the project.
"""
