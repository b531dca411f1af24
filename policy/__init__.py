"""Policy stage: KPI policies from YAML, guards, and decisions about violations."""
