"""The list of instruction sets (``_src/fx_isa_list.h``), read for setup.py and the tests.

The C header is the one list: fx_dispatch.c includes it for the run-time tests, and this
module reads its names, machines and compiler flags, so that setup.py builds exactly
those entries. It imports nothing from the package (setup.py loads it by path).
"""

import pathlib
import re

LIST = pathlib.Path(__file__).resolve().parent / "_src" / "fx_isa_list.h"

_ENTRY = re.compile(r'^FX_ISA\(\s*(\w+)\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"', re.MULTILINE)


class Isa:
    """One entry: ``name``, the ``machines`` it builds on, its compiler ``flags``."""

    def __init__(self, name, machines, flags):
        self.name = name
        self.machines = machines
        self.flags = flags

    def builds_on(self, machine):
        """Whether this entry builds on ``platform.machine()`` ``machine``."""
        return "*" in self.machines or machine.lower() in self.machines

    def __repr__(self):
        return f"Isa({self.name!r}, machines={self.machines}, flags={self.flags})"


def isa_list(path=LIST):
    """The entries of the list, best first."""
    text = pathlib.Path(path).read_text()
    return [Isa(name, machines.split(), flags.split())
            for name, machines, flags in _ENTRY.findall(text)]
