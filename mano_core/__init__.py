"""MANO core: descriptors, catalogue, inventory, LCM operation occurrences, VNFM and VIM drivers."""
