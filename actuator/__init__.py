"""Actuator stage: runs decisions through the VNFM, one operation at a time per VNF."""
