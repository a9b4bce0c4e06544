"""Defaults the CLI shows in ``--help``: here, so that parsing imports no numpy."""

DEFAULT_MODEL = "MIT/ast-finetuned-audioset-10-10-0.4593"
POOLS = ("pooler", "mean", "both")
REPRESENTATION = "ast"  # manifests/ast.parquet; ``--tag NAME`` makes it ast-NAME
