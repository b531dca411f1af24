"""Analytics stage: per-series windows and detectors that raise ONSET/ABATED violations."""
