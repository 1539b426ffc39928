"""hwnas latency_tables package (see shared DESIGN.md); filled in by later issues."""
