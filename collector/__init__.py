"""Collector stage: VIM telemetry and Prometheus scrapes into batched samples on the bus."""
