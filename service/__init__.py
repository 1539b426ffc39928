"""hwnas service package (see shared DESIGN.md); filled in by later issues."""
