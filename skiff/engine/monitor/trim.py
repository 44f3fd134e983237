"""Give back the pages an idle monitor touched only while its interpreter started.

Starting Python touches about 3 MB of the interpreter's code and read-only data
(Debian's ``python3.11`` links libpython statically), and the kernel keeps every
page it mapped for as long as the process lives, although the idle loop then runs
a small part of it. With other Python processes on the host these pages are
shared and a monitor's PSS counts only its share; a lone monitor pays them all
(7.1 MB PSS instead of 5).

``release_startup_pages`` unmaps, with ``madvise(MADV_DONTNEED)``, the read-only
file mappings of the process: the pages stay in the page cache (no disk read, no
cost to any other process) and the few the loop needs come back on first use.
Only mappings that cannot hold private data are touched: not writable, and
without anonymous (copy-on-write) pages, such as the relocations the dynamic
loader wrote before making them read-only. As the kernel does under memory
pressure, nothing else changes for the process.

Standard library only (it runs in the idle loop). ``_ctypes`` without the
``ctypes`` package: the package's classes would cost the heap more than this.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # nothing but the standard library at run time, and not typing: see idle.py
    import _ctypes

MADV_DONTNEED = 4


def release_startup_pages() -> None:
    """Drop this process's clean file-backed pages; without ``_ctypes``, leave them."""
    try:
        madvise = _madvise()
    except (ImportError, AttributeError, OSError):
        return  # a monitor without them is only bigger
    # Spans first, calls after: once the interpreter's code is unmapped, whatever runs
    # next maps its pages again, so as little as possible runs after.
    for start, end in read_only_file_mappings():
        madvise(start, end - start, MADV_DONTNEED)


def read_only_file_mappings(smaps: str = "/proc/self/smaps") -> list[tuple[int, int]]:
    """(start, end) of each mapping of a file that is not writable and holds no private page."""
    spans = []
    candidate = None
    with open(smaps, "rb") as f:
        for line in f:
            fields = line.split()
            if b"-" in fields[0] and not fields[0].endswith(b":"):  # a mapping's header line
                path_ok = len(fields) >= 6 and fields[5].startswith(b"/")
                candidate = fields[0] if path_ok and b"w" not in fields[1] else None
            elif fields[0] == b"Anonymous:" and candidate is not None:
                if fields[1] == b"0":
                    start, end = candidate.split(b"-")
                    spans.append((int(start, 16), int(end, 16)))
                candidate = None
    return spans


def _madvise() -> "_ctypes.CFuncPtr":
    import _ctypes

    class Int(_ctypes._SimpleCData):
        _type_ = "i"

    class Size(_ctypes._SimpleCData):
        _type_ = "L"  # unsigned long: a size_t, and an address, on Linux

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = Int

    class Process:  # what CFuncPtr looks symbols up in: the process and the libraries it loaded
        # typeshed's stubs of these private entry points are narrower than the C code:
        _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # NULL: the process itself

    madvise = Function(("madvise", Process))  # type: ignore[arg-type]  # any object with a _handle
    madvise.argtypes = (Size, Size, Int)
    return madvise
