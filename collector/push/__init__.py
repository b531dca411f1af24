"""Push receivers: Prometheus remote_write and ONAP VES events, as aiohttp handlers."""
