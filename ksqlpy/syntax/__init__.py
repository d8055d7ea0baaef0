"""Syntax: statement text -> AST, through the one lark grammar (ksql.lark)."""
