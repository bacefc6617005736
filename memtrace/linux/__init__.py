"""Kernel facts that belong to no layer: versions and every era threshold
(:mod:`.version`), the OOM killer's arithmetic (:mod:`.oom_kill`), /proc views
(:mod:`.proc`), GFP flags (:mod:`.gfp`), sizes and C-type limits (:mod:`.limits`) and
the syscalls' error returns (:mod:`.errors`).

This package imports nothing else of memtrace; every layer may use it. Import the
module you need (``from memtrace.linux.version import parse_kernel_version``).
"""
