"""`ksqlpy shell`: the interactive statement prompt and the text rendering of statement results."""
