# A package so pytest puts tests/ (its first non-package parent) on sys.path,
# which makes the shared helper importable as `import otelcol`.
