"""One module per target: checked IR -> template context -> code."""

TARGETS = ("keras", "pytorch")
