"""The kernel-log reader's bounds: how much of a log ``memtrace report`` reads in full.

A kernel log is often someone else's file, and a small one can hold a great deal: a
4 MB gzip of a log inflates to gigabytes, and 10 MB of text can hold 2,800 full OOM
reports or 60,000 kill lines, each of which the reader keeps as facts with their
evidence (about 50 KiB per full report once analysed). Before these bounds a 100 MB
log of one real memcg OOM report repeated took ``memtrace report`` 61 s and 1.4 GiB.

The reader (:func:`~.parse.parse_oom_log`) reads the log in full until one of
:data:`LOG_MAX_REPORTS` and :data:`LOG_MAX_REPORT_LINES` is reached; from there on it
only counts, in the raw text, the lines and the OOM headers and kill lines of the
rest, and says so in a warning. It reads at most :data:`LOG_MAX_TEXT_BYTES` of text
(after gzip), the counting included; what lies beyond is not read, and a warning
says so. The report of what was read is still given: the OOM reports found are real
ones, and a user can cut the log (``tail -c``, ``journalctl --since``) to see others.

Each bound is far above a real log: the corpus of ``tests/data/oomlogs`` holds at
most 7 reports and 62 KB a file, and the ``read_kernel_log`` benchmark's 1,000,000-line
journal (102 MB, 100 reports) is read exactly as before. Together with the report's
``MAX_DETAILED_KILLS`` they keep every command that reads a log within 1 GiB and 60 s
on any input under 10 MB (issue 14), measured by ``tests/robustness/test_log_bombs.py``
and the ``guardrails`` benchmark.
"""

from __future__ import annotations

__all__ = ["LOG_MAX_REJOIN_STEPS", "LOG_MAX_REPORTS", "LOG_MAX_REPORT_LINES", "LOG_MAX_TEXT_BYTES"]

#: Most text read from one log, in bytes of its text (a gzip's after inflation):
#: 128 MiB, above the 102 MB benchmark journal. The reader's slowest text (lines it
#: must parse one by one: ``Mem-Info:`` lines, each of which may begin a report) goes
#: at about 5 MB/s here, so this keeps a read under about 30 s whatever the text.
LOG_MAX_TEXT_BYTES = 128 << 20

#: Most OOM reports read in full from one log (a kill line alone, a header whose
#: report the log cuts, a panic: each is one). A machine that logs more is in an OOM
#: loop, which its first 2,000 reports show; the rest are counted (their headers and
#: kill lines), not read. One report read and analysed takes about 2 ms and 50 KiB.
LOG_MAX_REPORTS = 2000

#: Most lines read into OOM reports from one log, all reports together: 131,072. A
#: report prints a line per task in its task table (a machine of 1,000 tasks: about
#: 1,100 lines), and each line read costs about 4 KiB by the time the report is
#: written as JSON (210,000 task rows in one report took 922 MiB): this bound keeps
#: that under about 600 MiB. 2,000 reports of a small memcg (54 lines each) fit.
LOG_MAX_REPORT_LINES = 1 << 17

#: Most pieces the reader tries to glue onto wrapped lines, all lines of one log
#: together (:func:`~.rejoin.resolve`): 262,144. A line as wide as a terminal starts a
#: search over the 23 raw lines after it (:data:`~.rejoin.MAX_PIECES`): about 40 µs a
#: piece here on lines made to look wrapped, so 20 MB of 79 ``[`` a line took 62 s.
#: Real logs try few: the 102 MB benchmark journal 1,836, a corpus file at most 420
#: (four reports, wrapped by a mail client). Once spent, lines are read as they
#: stand, unglued, and a warning says so.
LOG_MAX_REJOIN_STEPS = 1 << 18
