"""Command line: a thin click layer over the three stages."""
