"""One module per target: checked IR -> statements -> code.

The names each target's programs reserve are declared in rnnspec/names.py, which the checker asks,
so that nothing on the front end imports a target.
"""

from __future__ import annotations

TARGETS = ("keras", "pytorch")
