"""Execution: compiled expressions and batch operators that turn input records into output records."""
