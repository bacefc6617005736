"""memtrace: eBPF-style tracing and replay of a faithful simulated Linux memory manager."""

__version__ = "0.1.0"
