"""The NFVO: network services made of VNFs across several VIMs, their placement and grants."""
