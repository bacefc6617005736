"""Rejoining what a mail client or a terminal hard-wrapped, guided by the line shapes.

A raw line continues on the next ones only when the next ones carry no prefix of their
own, the first could have been wrapped there (its width fits a wrap column of 60..80, the
paste's own width, or a terminal's), and the joined text completes one of the shapes of
:mod:`.shapes` that the first piece alone does not complete. Two real lines are never
glued: a piece that is a whole shape by itself, or has its own prefix, or another quote
depth, ends the join. A line that starts a key shape (header, ``CPU:``/``Pid:``,
``Killed``/``Kill process``, ``oom-kill:``, ``memory.oom.group``, reaper, task-table
header) but does not complete it is marked ``truncated:<shape>``: its last field may have
been cut by the paste (``pid=10`` of a ``pid=116849`` cut at column 100) and must not be
trusted over better evidence (the parser reads :attr:`.prefix.LogLine.rule`).

Simplified, on purpose: a kernel line split by other output between its pieces, each
with its own timestamp (a KASAN report printed inside an ``oom-kill:`` line), is not
rejoined here: both halves come out, the first marked truncated.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .prefix import KERNEL_LINE, NO_PREFIX, OTHER_PROGRAM, LogLine, Rec, after_wall, make_logline
from .shapes import (
    COMM_OF,
    CPU_TAIL,
    MAX_SHAPE,
    MILESTONES,
    NO_COMM,
    ROW_NAME_TAIL,
    TAILS,
    ReaderState,
    complete,
    key_lead,
    kv_continues,
    kv_family,
    kv_line,
    maybe_key,
    milestone,
    set_row_layout,
)

__all__ = ["MAX_PIECES", "add_rule", "finish", "resolve", "separators"]

MAX_PIECES = 24  # raw lines one kernel line may have been wrapped into (a 1000-char line at 60 columns: 17)
_WRAP_MIN, _WRAP_MAX = 60, 80  # mail clients wrap at a column in this range
_MAY_START = re.compile(
    r"oom|OOM|Kill|kill|invoked|CPU|Pid|emory|Task|cpuset|usage|failcnt|reaper|panic|Node|DMA|Normal|HighMem"
    r"|Movable|Device|active|Active|unevictable|slab|mapped|free|pagetables|reclaimable|lowmem|Swap|hugepages|^\s*\["
)


def separators(prev: Rec, b: Rec, st: ReaderState, acc: int = 0) -> tuple[str, ...]:
    """How piece ``b`` may be glued after ``prev``: ``" "`` for a word wrap that ate the
    space, ``""`` for a hard wrap or a break at kept whitespace, best first; none when
    ``prev`` was not long enough to have been wrapped there. ``acc`` is the raw width of
    the pieces already joined before ``b`` (a terminal cut the whole of them at its width,
    then a mail client wrapped them again: the "double wrap")."""
    width = prev.width
    widest = st.widest.get(prev.quote, width)
    bt = b.text
    word = bt.split(None, 1)
    if not word:
        return ()
    w = len(word[0]) + len(bt) - len(bt.lstrip())  # a break inside a run of spaces moved the run down
    mail = width <= _WRAP_MAX and width + 1 + w > _WRAP_MIN
    paste = width >= 40 and width + 1 + w > widest  # word wrap at the paste's own width
    hard = (width >= _WRAP_MIN and width >= widest - 1) or acc >= _WRAP_MAX  # cut at a terminal's width
    if not mail and width > _WRAP_MIN and " " not in prev.text.strip():
        mail = True  # one word wider than the wrap column stands on a line of its own
    if not (mail or paste or hard):
        return ()
    if prev.text[-1:] in (" ", "\t") or bt[:1] in (" ", "\t"):
        return ("",)
    if (mail or paste) and hard:
        # A line as wide as the widest, 80 columns or more, is a terminal's cut first.
        return ("", " ") if width >= _WRAP_MAX and width >= widest else (" ", "")
    return (" ",) if mail or paste else ("",)


_KILL_MESSAGE = re.compile(r"(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): ")


def _message_split(a: str, b: str) -> bool:
    """Whether a kill line ``b`` is the rest of a kill message that ``a`` began: ``a`` ends
    with the message's colon, or ``b``'s message is not one the kernel prints whole."""
    if a.rstrip().endswith(":"):
        return b[:4] in ("Kill", "kill")
    return ": " in b[:80] and not _KILL_MESSAGE.match(b)


_HEX40 = re.compile(r"[0-9a-f]{40}")  # a build id after a CPU line's release


def _glued_word(a: str, b: str) -> str:
    """The word a terminal's cut between ``a`` and ``b`` would have split, bare of the
    punctuation around task names."""
    left = a.rsplit(None, 1)[-1] if a.strip() else ""
    right = b.split(None, 1)[0] if b.strip() else ""
    return (left + right).strip("(),:=")


def _search(buf: list[Rec], start: int, base: tuple[str, ...], st: ReaderState, full: Callable[[str], str | None],
            partial: Callable[[str], str | None] | None, tail: re.Pattern[str] | None,
            quote: str) -> tuple[int, str, str] | None:
    """Glue ``buf[start:]`` piece by piece after the texts ``base`` until ``full`` takes one
    joined (stripped) text: ``(last piece index, text, shape)``; failing that, the longest
    join ``partial`` takes (a wrapped line the paste also cut short), or None."""
    best: tuple[int, str, str] | None = None
    cands = base
    prev = buf[start - 1]
    acc = sum(r.width for r in buf[:start])
    for k in range(start, min(len(buf), MAX_PIECES)):
        b = buf[k]
        if b.kind != NO_PREFIX or b.quote != quote or st.rejoin_steps_left <= 0:
            return best
        st.rejoin_steps_left -= 1
        bs = b.text.strip()
        if not bs or len(bs) > MAX_SHAPE:
            return best
        if k == start and tail is not None and not tail.match(bs):
            return best
        alone = complete(bs, st)
        if alone is not None and not (k == 1 and alone in ("killed", "kill") and _message_split(cands[0], bs)):
            return best  # a whole line of its own is never glued (but to the "Out of memory" it belongs to)
        # A terminal's cut inside the pieces of a mail wrap (the double wrap) is trusted
        # only where the shape says where the line ends (not after a CPU line's release).
        double = k > 1 and tail is not CPU_TAIL
        seps = separators(prev, b, st, acc if double else 0)
        if tail is ROW_NAME_TAIL:  # only a terminal cuts inside a name (a comm: 15 characters at most)
            name_cut = (prev.text[-1:] not in (" ", "\t") and b.text[:1] not in (" ", "\t") and " " not in bs
                        and len(_glued_word(prev.text, bs)) <= 15)
            seps = ("",) if "" in seps and name_cut else ()
        elif tail is not None and k == start and " " in seps:  # a tail starts a new field, unless cut inside one
            cut = (bs[0] in ",:" or prev.text[-1:] in "-_.~(" or _HEX40.fullmatch(_glued_word(prev.text, bs))
                   or (prev.text.endswith("PREEMPT") and bs[0] == "("))  # "PREEMPT(voluntary)"
            seps = ("",) if "" in seps and cut else (" ",)
        if not seps:
            return best
        acc += b.width
        nxt = []
        for c in cands:
            done = []
            for sep in seps:
                joined = c + sep + b.text
                js = joined.strip()
                shape = full(js)
                if shape is not None:
                    done.append((joined, shape))
            if done:
                joined, shape = done[0]
                if len(done) == 2 and _glued_word(c, b.text) in st.comms:  # a cut inside a known name
                    joined, shape = next(d for d in done if d[0][len(c):len(c) + 1] != " ")
                return k, joined, shape
            for sep in seps:
                joined = c + sep + b.text
                js = joined.strip()
                if partial is not None and (best is None or best[0] < k):
                    shape = partial(js)
                    if shape is not None:
                        best = (k, joined, shape)
                if len(joined) <= MAX_SHAPE:
                    nxt.append(joined)
        cands = tuple(nxt[:4])
        if not cands:
            return best
        prev = b
    return best


def _join_kv(buf: list[Rec], family: str, st: ReaderState) -> tuple[int, str, bool]:
    """Glue Mem-Info continuation pieces after ``buf[0]``: ``(last index, text, pager_cut)``."""
    a = buf[0]
    text = a.text
    a_first = a.text.strip()
    prev = a
    last = 0
    pager = False
    for k in range(1, min(len(buf), MAX_PIECES)):
        b = buf[k]
        if b.kind != NO_PREFIX or b.quote != a.quote or pager:
            break
        seps = separators(prev, b, st)
        if not seps or not kv_continues(family, text.strip(), b, a_first):
            break
        for sep in seps:
            joined = text + sep + b.text
            ok, cut = kv_line(family, joined.strip())
            if ok:
                break
        if not ok:
            break
        text = joined
        last, pager, prev = k, cut, b
    return last, text, pager


def _partial(buf: list[Rec], ast: str, st: ReaderState) -> tuple[int, str, str] | None:
    """The pieces of a wrapped key line that was also cut short (see MILESTONES)."""
    lead = key_lead(ast)
    if lead not in MILESTONES or milestone(lead, ast):
        return None
    shape: str = lead

    def whole(t: str) -> str | None:
        return shape if complete(t, st) == shape else None

    def reached(t: str) -> str | None:
        return shape if milestone(shape, t) else None

    return _search(buf, 1, (buf[0].text,), st, whole, reached, None, buf[0].quote)


_RELEASE_REST = re.compile(r"(?=.*[A-Za-z0-9)])[\w.+~()#-]+(?: +[^\s:]+)*")


def _cut_tail(buf: list[Rec], found: tuple[int, str, str], st: ReaderState,
              quote: str) -> tuple[int, str, str] | None:
    """A whole line a terminal cut inside its last word: ``oom_score_adj:1`` / ``000``, a
    CPU line's release or build tag (``5.4.0-rc4-1.g9db4e16-`` / ``default #1 openSUSE``,
    ``#50-U`` / ``buntu``). Complete at the cut already, it goes on with that word."""
    k = found[0] + 1
    prev, b = buf[found[0]], buf[k]
    bs = b.text.strip()
    shape = found[2]
    if (b.kind != NO_PREFIX or b.quote != quote or not bs or "" not in separators(prev, b, st)
            or (shape != "cpu" and (found[1][-1:] in (" ", "\t") or b.text[:1] in (" ", "\t")))):
        return None
    joined = found[1] + b.text
    if shape == "cpu":  # free text after the release: the build tag's words, no "Key: value"
        ok = _RELEASE_REST.fullmatch(bs) is not None
    elif shape == "header":  # anything may follow a whole header after a space: only its last word
        ok = " " not in bs and complete(joined.strip(), st) == shape
    else:
        ok = complete(joined.strip(), st) == shape
    return (k, joined, shape) if ok else None


_SPLIT_KTS = re.compile(r"\[[ \d.]{0,13}")


def resolve(buf: list[Rec], st: ReaderState) -> tuple[Rec, int]:
    """The record ``buf[0]`` stands for, rejoined with following pieces when they are its
    wrapped continuation, and how many records it consumed."""
    a = buf[0]
    if a.kind == OTHER_PROGRAM or len(buf) == 1:
        return a, 1
    b = buf[1]
    if b.kind != NO_PREFIX or b.quote != a.quote:
        return a, 1
    at = a.text
    ast = at.strip()
    if not ast:
        # A prefix alone, its text moved to the next line by a mail client (a long word).
        bs = b.text.strip()
        if a.kind == KERNEL_LINE and bs and separators(a, b, st) and (
                complete(bs, st) is not None or key_lead(bs) is not None):
            merged = a._replace(width=b.width, text=b.text.lstrip(), linenos=a.linenos + b.linenos,
                                rule=add_rule(a.rule, "rejoined:prefix-only"))
            buf[1] = merged
            rec, n = resolve(buf[1:], st)
            return rec, n + 1
        return a, 1
    if len(at) > MAX_SHAPE or not separators(a, b, st):
        return a, 1
    if not _MAY_START.search(ast, 0, 80) and len(ast.split(None, 3)) > 3:
        return a, 1  # no shape begins so (a short text may be a comm or "Out of")
    if a.kind == KERNEL_LINE and _SPLIT_KTS.fullmatch(ast):
        # The wrap fell inside the kernel's timestamp: "... kernel: [" / " 518.222649] text".
        for sep in separators(a, b, st):
            parts: list[str] = []
            ts, _wall, _caller, rest = after_wall(at.lstrip() + sep + b.text, parts)
            if ts is not None and a.ts_ns is None:
                merged = a._replace(ts_ns=ts, text=rest, width=b.width, linenos=a.linenos + b.linenos,
                                    rule=add_rule(add_rule(a.rule, "kts"), "rejoined:split-prefix"))
                buf[1] = merged
                rec, n = resolve(buf[1:], st)
                return rec, n + 1
    a_shape = complete(ast, st)
    found: tuple[int, str, str] | None = None

    def any_shape(t: str) -> str | None:
        return complete(t, st)

    if a_shape is None:
        found = _search(buf, 1, (at,), st, any_shape, None, None, a.quote)
        if found is None:
            found = _partial(buf, ast, st)
    else:
        found = (0, at, a_shape)
    if found is not None:
        while found[0] + 1 < len(buf):
            shape = found[2]
            tail = TAILS.get(shape)
            more = None
            if tail is not None:

                def same(t: str, shape: str = shape) -> str | None:
                    return shape if complete(t, st) == shape else None

                def reached(t: str, shape: str = shape) -> str | None:
                    return shape if milestone(shape, t) else None

                more = _search(buf, found[0] + 1, (found[1],), st, same, reached, tail, a.quote)
            if more is None and shape != "task-row":
                more = _cut_tail(buf, found, st, a.quote)
            if more is None:
                break
            found = more
            if complete(found[1].strip(), st) != shape:
                break
        if found[0] > 0:
            last, text, shape = found
            return _joined(buf, last, text, "rejoined:wrapped-" + shape), last + 1
        return a, 1
    family = kv_family(ast)
    if family is None and b.text.strip():  # the break fell inside the lead ("Node 0 DMA" / "free:...")
        family = kv_family(ast + " " + b.text.strip())
    if family is not None:
        last, text, pager = _join_kv(buf, family, st)
        if last > 0:
            rule = "rejoined:wrapped-meminfo-" + family
            if pager:
                rule += "+truncated:pager"
            return _joined(buf, last, text, rule), last + 1
    return a, 1


def add_rule(rule: str, part: str) -> str:
    if not part:
        return rule
    return rule + "+" + part if rule else part


def _joined(buf: list[Rec], last: int, text: str, why: str) -> Rec:
    a = buf[0]
    linenos = a.linenos
    for r in buf[1:last + 1]:
        linenos += r.linenos
    return a._replace(text=text, linenos=linenos, rule=add_rule(a.rule, why), width=buf[last].width)


def finish(rec: Rec, st: ReaderState) -> LogLine:
    """The LogLine of a resolved record: key shapes left incomplete are marked
    ``truncated:<shape>``; a task-table header sets the row layout."""
    text, rule = rec.text, rec.rule
    if rec.kind != OTHER_PROGRAM and maybe_key(text):
        t = text.strip()
        lead = key_lead(t, rec.kind == KERNEL_LINE) if len(t) <= MAX_SHAPE else None
        if lead is not None:
            shape = complete(t, st)
            if shape is None and rec.quote and rec.quote.strip()[:1] in ("#", ">"):
                q = re.escape(rec.quote.strip()[:1])
                fixed = re.sub(r"(?<=\S)" + q + r" ", "", t)
                if fixed != t and complete(fixed, st) is not None:
                    text, t, shape = fixed, fixed, lead
                    rule = add_rule(rule, "rejoined:inline-quote")
            if shape is None:
                rule = add_rule(rule, "truncated:" + lead)
            elif shape == "task-header":
                set_row_layout(t, st)
            else:
                m = COMM_OF.get(shape, NO_COMM).match(t)
                if m and m.group(1):
                    st.comms[m.group(1)] = None
                    if len(st.comms) > 64:
                        del st.comms[next(iter(st.comms))]
    return make_logline(rec.ts_ns, text, rec.lineno, rec.wall, rec.host, rec.linenos, rule, rec.caller)
