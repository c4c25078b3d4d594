"""One module per agent: the OCF semantics of that resource type."""
