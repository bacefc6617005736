"""Replay of recorded workloads with altered sysctls (see the trace-file and replay issue)."""
