"""The ops, one file per family; each holds its Functions and the functions users call."""
