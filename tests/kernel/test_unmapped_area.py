"""get_unmapped_area() with its free-area cache gives the address the plain
top-down search over every VMA gives (arch_get_unmapped_area_topdown()), over
random sequences of mmaps of every size (2 MiB alignment included), munmaps and
moves of the break."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace.kernel.mm_types import MMAP_BASE, MMAP_MIN_ADDR, THP_ALIGN_BYTES, MmStruct, VmArea
from memtrace.linux.limits import PAGE_SIZE


def _plain_search(mm: MmStruct, length: int) -> int:
    """The search from the top through every VMA above the break."""
    align = THP_ALIGN_BYTES if length >= THP_ALIGN_BYTES else PAGE_SIZE
    top = MMAP_BASE
    for vma in sorted((v for v in mm.vmas if v.start >= mm.brk), key=lambda v: -v.start):
        if vma.start >= top:
            continue
        start = (top - length) & ~(align - 1)
        if vma.end <= top and start >= vma.end:
            return start
        top = vma.start
    start = (top - length) & ~(align - 1)
    return start if start >= max(mm.brk, MMAP_MIN_ADDR) else 0


PAGES = st.sampled_from([1, 2, 3, 16, 511, 512, 513, 1024, 4096])
OPS = st.lists(st.one_of(st.tuples(st.just("mmap"), PAGES), st.tuples(st.just("munmap"), st.integers(0, 1 << 16)),
                         st.tuples(st.just("brk"), st.integers(0, 1 << 30))), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_the_cached_search_finds_the_plain_searchs_address(ops: list[tuple[str, int]]) -> None:
    mm = MmStruct(id=1, owner_pid=1)
    for i, (op, arg) in enumerate(ops):
        if op == "mmap":
            length = arg * PAGE_SIZE
            want = _plain_search(mm, length)
            got = mm.get_unmapped_area(length)
            assert got == want
            if got:
                mm.insert(VmArea(start=got, end=got + length, flags=0, kind="anon_private", handle=f"m{i}"))
        elif op == "munmap" and mm.vmas:
            mm.remove(mm.vmas[arg % len(mm.vmas)])
        elif op == "brk":
            mm.brk = mm.start_brk + (arg & ~(PAGE_SIZE - 1))
            mm.layout_changed()
    assert [v.start for v in mm.vmas] == sorted(v.start for v in mm.vmas)
    assert {h: [v.start for v in mm.fragments(h)] for h in {v.handle for v in mm.vmas}} == {
        v.handle: [v.start] for v in mm.vmas}
