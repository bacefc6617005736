"""State, graphs, explanations and OOM reports rebuilt from traces (imports only the tracer)."""
