"""Builders for tests, smoke runs, benchmarks and the demo recipe: random tiny components (``tiny``) and synthetic
talking faces with exact ground truth (``synthetic``). Never imported by the library's own code paths."""
