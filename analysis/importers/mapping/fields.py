"""Reading the fields of a real event's text as the C values the kernel printed.

A tracepoint's text is its ``TP_printk`` (or a syscall's ``name: value`` list); each
number is read as the C type the kernel prints it as, and one outside that type is
no value the kernel could have printed there: the line is damaged. Every such
failure is :class:`UnreadableLine`, which the dispatcher counts (the line's event
is "unreadable") and nothing else: an exception of another class is a bug and
propagates.
"""

from __future__ import annotations

from memtrace.linux.limits import INT_MAX, INT_MIN, PAGE_SIZE, ULONG_MAX

__all__ = [
    "KTHREAD_PREFIXES",
    "PARSE_ERRORS",
    "UnreadableLine",
    "c_int",
    "c_ulong",
    "in_range",
    "kv_fields",
    "number",
    "page_align",
    "to_signed64",
]


#: Comms of kernel threads, which have no mm of their own (and do no task's I/O).
KTHREAD_PREFIXES = ("kswapd", "oom_reaper", "kworker", "kcompactd", "khugepaged", "ksoftirqd", "migration",
                    "rcu_", "swapper", "kthreadd")


class UnreadableLine(ValueError):
    """The text of a known event is not what the kernel prints for it (a missing
    field, a number that is no number or does not fit its C type)."""


#: What reading a field's text raises on bad text: ``int()`` (ValueError), a token
#: or field that is not there (IndexError, KeyError). A handler turns these into
#: :class:`UnreadableLine` around its reading, and only there.
PARSE_ERRORS = (ValueError, IndexError, KeyError, OverflowError)


def to_signed64(value: int) -> int:
    """An unsigned 64-bit value read as the C ``long`` it was."""
    value &= ULONG_MAX
    return value - (1 << 64) if value >= 1 << 63 else value


def kv_fields(text: str) -> dict[str, str]:
    """``key=value`` (and ``key:value``) tokens of a trace line's payload."""
    out: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            key, sep, value = token.partition(":")
        if sep and key:
            out[key] = value
    return out


def number(text: str) -> int:
    """An integer printed as ``0x..`` (hex) or decimal, with an optional kB/B suffix."""
    text = text.strip().rstrip(",")
    for suffix in ("kB", "KB", "B"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


def in_range(value: int, lo: int, hi: int, what: str) -> int:
    """``value`` when ``lo <= value <= hi``; else UnreadableLine naming it.

    The bounds are those of the C type the kernel prints the field as: a number
    outside them is no value the kernel could have printed there (a damaged line),
    and would not fit the field's column, so the line's event is counted as
    unreadable, as one with any other bad text is.
    """
    if lo <= value <= hi:
        return value
    raise UnreadableLine(f"{what} {value} is outside [{lo}, {hi}]")


def c_int(text: str | int, what: str) -> int:
    """A C ``int`` (or ``pid_t``) printed with ``%d``, read."""
    return in_range(int(text), INT_MIN, INT_MAX, what)


def c_ulong(value: int, what: str) -> int:
    """A C ``unsigned long`` of a 64-bit kernel (``%lu``, ``%lx``), read."""
    return in_range(value, 0, ULONG_MAX, what)


def page_align(length_bytes: int) -> int:
    """``length_bytes`` rounded up to a page as the kernel's ``PAGE_ALIGN()`` does in
    an ``unsigned long``: a length within a page of 2**64 wraps to 0 (which mmap and
    munmap then refuse)."""
    return (length_bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ULONG_MAX
