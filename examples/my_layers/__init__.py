"""User layers for the examples: each written once per framework (see docs/custom-layers.md)."""
