"""Parse tables and compiled templates, built by rnnspec.prebuild."""
