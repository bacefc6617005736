"""Validation of a scenario before it runs: every bound, and the cross-references.

:func:`validate` checks a :class:`Scenario` however it was made (TOML or Python):
the bounds of ``bounds.py``, the sysctls against the one sysctl table
(``kernel/sysctl.py``), unique names, cgroups declared parent first, forks that
name forked children, waits for children forked earlier, and steps that use a
mapping created earlier (or inherited at the fork point).

Linear in the scenario's size: names, pids, cgroups and handles are looked up in
dicts and sets, never by scanning the other processes, and the handles a child
inherits are not copied per fork: one walk over the fork tree keeps the handles
created on the path from the root (see :func:`_check_handles`). When a scenario
has several faults, the one reported is the first in the order of the checks:
the scenario's own keys, then each process in order, then handles in the order
the processes start.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

from memtrace.errors import ScenarioError, SysctlError
from memtrace.linux.version import parse_kernel_version
from memtrace.units import format_duration_exact, format_size_exact

from ..filemap import is_tmpfs_path
from ..sysctl import check_all as check_sysctls
from .bounds import (
    MAX_CGROUP_LIMIT_BYTES,
    MAX_CGROUPS,
    MAX_DISK_WRITE_BYTES_PER_S,
    MAX_EXIT_CODE,
    MAX_PID,
    MAX_RAM_BYTES,
    MAX_REPEAT_COUNT,
    MAX_REPEAT_DEPTH,
    MAX_SIZE_BYTES,
    MAX_SWAP_BYTES,
    MAX_TIME_NS,
    MAX_UID,
    MIN_DISK_WRITE_BYTES_PER_S,
    MIN_PID,
    MIN_RAM_BYTES,
    PATH_MAX,
    SCENARIO_NAME,
    brief,
    check_pages,
    number_text,
    outside,
)
from .model import MachineSpec, ProcessSpec, Scenario
from .steps import (
    STEP_TYPES,
    Brk,
    DropCaches,
    Exit,
    Fork,
    Madvise,
    Mlock,
    Mmap,
    Mprotect,
    Mremap,
    Munlock,
    Munmap,
    Repeat,
    SetOomAdj,
    SetOomScoreAdj,
    Shmat,
    Shmdt,
    Sleep,
    Snapshot,
    Step,
    Sync,
    Touch,
    Wait,
    step_fields,
)

#: Steps that never advance simulated time once there is nothing to write back or
#: drop (the runner checks the others as they run).
_TIMELESS_STEPS = (Snapshot, Sync, DropCaches)
#: Steps that use a mapping by handle: each names one created before it.
_USES_HANDLE = (Touch, Munmap, Shmdt, Mlock, Munlock, Madvise, Mremap, Mprotect)
#: Attributes of a step holding a size in bytes, in the order they are checked.
_SIZE_ATTRS = ("length_bytes", "size_bytes", "offset_bytes")


def check_machine(m: MachineSpec, where: str) -> None:
    """The bounds of the machine: see MIN_RAM_BYTES and the other bounds."""
    check_pages(where, "ram", m.ram_bytes, MIN_RAM_BYTES, MAX_RAM_BYTES)
    check_pages(where, "swap", m.swap_bytes, 0, MAX_SWAP_BYTES)
    try:
        parse_kernel_version(m.kernel_version)
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"{where}: key 'kernel_version': {e}") from None
    if m.cgroup_version not in (1, 2):
        raise ScenarioError(f"{where}: key 'cgroup_version': {number_text(m.cgroup_version)} is not 1 or 2")
    if not 1 <= m.time_limit_ns <= MAX_TIME_NS:
        raise outside(where, "time_limit", m.time_limit_ns, "1ns", format_duration_exact(MAX_TIME_NS))
    if not MIN_DISK_WRITE_BYTES_PER_S <= m.disk_write_bytes_per_s <= MAX_DISK_WRITE_BYTES_PER_S:
        raise outside(where, "disk_write_rate", m.disk_write_bytes_per_s, format_size_exact(MIN_DISK_WRITE_BYTES_PER_S),
                      format_size_exact(MAX_DISK_WRITE_BYTES_PER_S))


def check_path(path: str, where: str, key: str) -> None:
    """A file path as open(2) takes it here: absolute, not a directory, under PATH_MAX."""
    if not path.startswith("/") or path.endswith("/") or "\0" in path or len(path) >= PATH_MAX:
        raise ScenarioError(f"{where}: key {key!r}: {brief(path)} is not an absolute file path such as /data/f")


def walk_steps(steps: tuple[Step, ...], prefix: str = "") -> Iterator[tuple[str, Step]]:
    """Steps in program order with their numbers ("3", "4.1" inside a repeat)."""
    for j, step in enumerate(steps, 1):
        number = f"{prefix}{j}"
        yield number, step
        if isinstance(step, Repeat):
            yield from walk_steps(step.steps, number + ".")


def _takes_time(steps: tuple[Step, ...]) -> bool:
    """Whether ``steps`` may advance simulated time or end the process: False only
    for snapshots, syncs, drop_caches, zero sleeps and repeats of those."""
    for step in steps:
        if isinstance(step, Repeat):
            if _takes_time(step.steps):
                return True
        elif isinstance(step, Sleep):
            if step.duration_ns > 0:
                return True
        elif not isinstance(step, _TIMELESS_STEPS):
            return True
    return False


def _size_keys_of(cls: type[Step]) -> tuple[tuple[str, str], ...]:
    """(attribute, TOML key) of the sizes step class ``cls`` has, in _SIZE_ATTRS order."""
    keys = {f.attr: f.key for f in step_fields(cls)}
    return tuple((attr, keys[attr]) for attr in _SIZE_ATTRS if attr in keys)


_SIZE_KEYS: dict[type[Step], tuple[tuple[str, str], ...]] = {cls: _size_keys_of(cls) for cls in STEP_TYPES.values()}


def _size_keys(cls: type[Step]) -> tuple[tuple[str, str], ...]:
    keys = _SIZE_KEYS.get(cls)
    return keys if keys is not None else _size_keys_of(cls)


def _check_step(step: Step, where: str) -> None:
    """The bounds of one step's own values."""
    if isinstance(step, SetOomScoreAdj) and not -1000 <= step.value <= 1000:
        raise ScenarioError(f"{where}: key 'value': {number_text(step.value)} is outside -1000..1000")
    if isinstance(step, SetOomAdj) and not -17 <= step.value <= 15:
        raise ScenarioError(f"{where}: key 'value': {number_text(step.value)} is outside -17..15")
    if isinstance(step, Exit) and not 0 <= step.code <= MAX_EXIT_CODE:
        raise outside(where, "code", step.code, "0", str(MAX_EXIT_CODE))
    if isinstance(step, Sleep) and not 0 <= step.duration_ns <= MAX_TIME_NS:
        raise outside(where, "duration", step.duration_ns, "0", format_duration_exact(MAX_TIME_NS))
    if isinstance(step, DropCaches) and step.value not in (1, 2, 3):
        raise ScenarioError(f"{where}: key 'value': drop_caches takes 1, 2 or 3, not {number_text(step.value)}")
    if isinstance(step, Repeat) and step.count == 0 and not _takes_time(step.steps):
        raise ScenarioError(
            f"{where}: key 'count': a count = 0 repeat runs until the process ends, but its steps "
            f"(snapshot, sync, drop_caches or sleep 0 only) take no simulated time: "
            f"give a count of 1..{MAX_REPEAT_COUNT} or add a sleep"
        )
    sizes = _size_keys(type(step))
    if sizes:
        max_size = format_size_exact(MAX_SIZE_BYTES)
        for attr, key in sizes:
            value: int = getattr(step, attr)
            if not 0 <= value <= MAX_SIZE_BYTES:
                raise outside(where, key, value, "0", max_size)
        end: int = getattr(step, "offset_bytes", 0) + getattr(step, "length_bytes", 0)
        if end > MAX_SIZE_BYTES:
            raise ScenarioError(f"{where}: key 'length': offset + length = {end} is beyond {max_size}")
    if isinstance(step, Brk) and not -MAX_SIZE_BYTES <= step.increment_bytes <= MAX_SIZE_BYTES:
        max_size = format_size_exact(MAX_SIZE_BYTES)
        raise outside(where, "increment", step.increment_bytes, f"-{max_size}", max_size)
    if isinstance(step, Mmap) and step.length_bytes <= 0:
        raise ScenarioError(f"{where}: key 'length': mmap needs a length > 0")
    if isinstance(step, Mremap) and step.length_bytes <= 0:
        raise ScenarioError(f"{where}: key 'length': mremap needs a new length > 0")
    path: str | None = getattr(step, "path", None)
    if path is not None and not (isinstance(step, Mmap) and path == ""):
        check_path(path, where, "file")


def _check_repeats(steps: tuple[Step, ...], where: str, prefix: str = "", iterations: int = 1,
                   depth: int = 0) -> None:
    """Repeats nest at most MAX_REPEAT_DEPTH deep and run at most MAX_REPEAT_COUNT
    iterations, nested counts multiplied (a count of 0 counts as 1 here: the runner
    stops it at MAX_REPEAT_COUNT iterations, and the time limit bounds it too)."""
    for j, step in enumerate(steps, 1):
        if not isinstance(step, Repeat):
            continue
        number = f"{prefix}{j}"
        if depth + 1 > MAX_REPEAT_DEPTH:
            raise ScenarioError(f"{where} step {number}: key 'steps': repeats nest more than {MAX_REPEAT_DEPTH} deep")
        if not 0 <= step.count <= MAX_REPEAT_COUNT:
            raise outside(f"{where} step {number}", "count", step.count, "0", str(MAX_REPEAT_COUNT))
        total = iterations * max(step.count, 1)
        if total > MAX_REPEAT_COUNT:
            raise ScenarioError(f"{where} step {number}: key 'count': {step.count} iterations inside "
                                f"repeats of {iterations} make {total}, more than {MAX_REPEAT_COUNT}")
        _check_repeats(step.steps, where, number + ".", total, depth + 1)


def _check_files(scenario: Scenario) -> None:
    """Boot-time files: absolute disk paths (tmpfs files are made by write steps),
    each declared once, of a bounded size."""
    src = scenario.source
    paths: set[str] = set()
    for f in scenario.files:
        where = f"{src}: file {f.path!r}"
        check_path(f.path, where, "path")
        if is_tmpfs_path(f.path):
            raise ScenarioError(f"{where}: key 'path': tmpfs files are made by write steps")
        if f.path in paths:
            raise ScenarioError(f"{where}: key 'path': declared twice")
        paths.add(f.path)
        if not 0 <= f.size_bytes <= MAX_SIZE_BYTES:
            raise outside(where, "size", f.size_bytes, "0", format_size_exact(MAX_SIZE_BYTES))


def _check_cgroups(scenario: Scenario) -> set[str]:
    """Memory cgroups: at most MAX_CGROUPS, each path declared once after its
    parent, limits whole pages. Returns every cgroup path, the root included."""
    src = scenario.source
    if len(scenario.cgroups) > MAX_CGROUPS:
        raise ScenarioError(f"{src}: {len(scenario.cgroups)} cgroups, more than {MAX_CGROUPS}")
    known = {"/"}
    for c in scenario.cgroups:
        where = f"{src}: cgroup {c.path!r}"
        if not c.path.startswith("/") or c.path == "/" or c.path.endswith("/"):
            raise ScenarioError(f"{where}: key 'path': expected a path such as /app or /app/web")
        if c.path in known:
            raise ScenarioError(f"{where}: key 'path': declared twice")
        parent = c.path.rsplit("/", 1)[0] or "/"
        if parent not in known:
            raise ScenarioError(f"{where}: key 'path': parent {parent!r} must be declared first")
        check_pages(where, "max", c.max_bytes, 0, MAX_CGROUP_LIMIT_BYTES)
        if c.swap_max_bytes != -1:  # -1: no limit (the key left out)
            try:
                check_pages(where, "swap_max", c.swap_max_bytes, 0, MAX_CGROUP_LIMIT_BYTES)
            except ScenarioError as e:
                raise ScenarioError(f"{e} (leave swap_max out for no limit)") from None
        known.add(c.path)
    return known


def _check_process(p: ProcessSpec, where: str, cgroups: set[str]) -> None:
    """A process's own keys and its repeats' counts and depth."""
    if p.cgroup not in cgroups:
        raise ScenarioError(f"{where}: key 'cgroup': no [[cgroup]] with path {p.cgroup!r}")
    if p.pid is not None and not MIN_PID <= p.pid <= MAX_PID:
        raise ScenarioError(f"{where}: key 'pid': {number_text(p.pid)} is outside {MIN_PID}..{MAX_PID}")
    if not -1000 <= p.oom_score_adj <= 1000:
        raise ScenarioError(f"{where}: key 'oom_score_adj': {number_text(p.oom_score_adj)} is outside -1000..1000")
    if not 0 <= p.uid <= MAX_UID:
        raise outside(where, "uid", p.uid, "0", str(MAX_UID))
    if not 0 <= p.start_ns <= MAX_TIME_NS:
        raise outside(where, "start", p.start_ns, "0", format_duration_exact(MAX_TIME_NS))
    _check_repeats(p.steps, where)


def validate(scenario: Scenario) -> None:
    """Check every bound (``bounds.py``) and the cross-checks that need the whole
    scenario: unique names, forks name children, waits name children forked
    earlier, steps name mappings created earlier.

    ScenarioError names the source, the process, the step and the key; a bad
    sysctl raises SysctlError.
    """
    src = scenario.source
    if not isinstance(scenario.name, str) or not SCENARIO_NAME.fullmatch(scenario.name):
        raise ScenarioError(f"{src}: key 'name': {brief(scenario.name)} is not a scenario name: 1 to 128 "
                            "letters, digits, '.', '_' or '-', not starting with '.' or '-'")
    check_machine(scenario.machine, f"{src}: [machine]")
    try:
        check_sysctls(scenario.sysctls)
    except SysctlError as e:
        raise SysctlError(f"{src}: [sysctl]: {e}") from None
    uses = Counter(p.name for p in scenario.processes)
    dupes = sorted(name for name, n in uses.items() if n > 1)
    if dupes:
        raise ScenarioError(f"{src}: process name {dupes[0]!r} is used twice")
    by_name = {p.name: p for p in scenario.processes}
    _check_files(scenario)
    cgroups = _check_cgroups(scenario)
    pids = [p.pid for p in scenario.processes if p.pid is not None]
    if len(set(pids)) != len(pids):
        raise ScenarioError(f"{src}: two processes ask for the same pid")
    forked_by: dict[str, str] = {}
    for p in scenario.processes:
        _check_process(p, f"{src}: process {p.name!r}", cgroups)
        forked_here: set[str] = set()
        for j, step in walk_steps(p.steps):
            where = f"{src}: process {p.name!r} step {j}"
            _check_step(step, where)
            if isinstance(step, (Fork, Wait)):
                child = by_name.get(step.child)
                if child is None:
                    raise ScenarioError(f"{where}: key 'child': no process named {step.child!r}")
                if isinstance(step, Fork):
                    if not child.forked:
                        raise ScenarioError(f"{where}: key 'child': process {step.child!r} must say forked = true")
                    if step.child in forked_by:
                        raise ScenarioError(f"{where}: key 'child': process {step.child!r} is forked twice")
                    forked_by[step.child] = p.name
                    forked_here.add(step.child)
                elif step.child not in forked_here:
                    raise ScenarioError(
                        f"{where}: key 'child': process {step.child!r} is not forked by {p.name!r} before this step"
                    )
    for p in scenario.processes:
        if p.forked and p.name not in forked_by:
            raise ScenarioError(f"{src}: process {p.name!r} says forked = true but no step forks it")
    _check_handles(scenario, by_name, forked_by)


def _check_handles(scenario: Scenario, by_name: dict[str, ProcessSpec], forked_by: dict[str, str]) -> None:
    """Every touch, munmap, shmdt, mlock, munlock, madvise, mremap and mprotect
    names a mapping that its
    process created at an earlier step (mmap, shmat; brk creates ``heap``) or
    inherited at its fork point; every forked process starts.

    A static check of names only: whether the mapping still exists when the step
    runs (an mmap refused, an earlier munmap) is the run's business (SIGSEGV).

    validate() has made the forks a forest: each forked process is forked by one
    step, and no process that starts at boot is forked. One depth-first walk of
    it keeps ``known``, the handles created on the path from the root to the
    current step, counted (a name created twice on the path stays known until
    both are forgotten): a child walks its steps on top of its parent's handles
    at the fork point, and its own are forgotten when its subtree is done. Each
    step is visited once, whatever the tree's shape. Of the processes with a
    step naming an unknown handle, the one reported is the first in breadth-first
    order from the processes at boot (those in order, then the children they
    fork in fork order, and so on); its first such step is named.
    """
    src = scenario.source
    roots = [p for p in scenario.processes if not p.forked]
    known: Counter[str] = Counter()
    failures: dict[str, tuple[str, str]] = {}  # process -> (step number, unknown handle)
    children: dict[str, list[str]] = {}  # process -> the children it forks, in fork order
    for root in roots:
        # (process, its remaining steps, the handles it created so far)
        stack: list[tuple[ProcessSpec, Iterator[tuple[str, Step]], list[str]]] = [
            (root, walk_steps(root.steps), [])]
        while stack:
            p, steps, created = stack[-1]
            forked: ProcessSpec | None = None
            for number, step in steps:
                if isinstance(step, _USES_HANDLE):
                    if not known[step.handle]:
                        failures.setdefault(p.name, (number, step.handle))
                    continue
                if isinstance(step, (Mmap, Shmat)):
                    handle = step.handle
                elif isinstance(step, Brk):
                    handle = "heap"
                elif isinstance(step, Fork):
                    forked = by_name[step.child]
                    children.setdefault(p.name, []).append(step.child)
                    break
                else:
                    continue
                known[handle] += 1
                created.append(handle)
            if forked is not None:
                stack.append((forked, walk_steps(forked.steps), []))
                continue
            stack.pop()
            for handle in created:
                known[handle] -= 1
    started: dict[str, int] = {}  # process -> its place in start order
    queue = deque(p.name for p in roots)
    while queue:
        name = queue.popleft()
        started[name] = len(started)
        queue.extend(children.get(name, ()))
    if failures:
        name = min(failures, key=started.__getitem__)
        number, handle = failures[name]
        raise ScenarioError(f"{src}: process {name!r} step {number}: key 'handle': "
                            f"no mapping {handle!r} is created before this step")
    for p in scenario.processes:
        if p.name not in started:
            raise ScenarioError(
                f"{src}: process {p.name!r} never starts: process {forked_by[p.name]!r}, which forks it, never starts"
            )

