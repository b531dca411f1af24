"""A simulated VNF workload: traffic, per-VNFC load and Prometheus exporters."""
