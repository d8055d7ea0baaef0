"""Planning: AST -> typed logical plan against the catalog (names resolved, types checked)."""
