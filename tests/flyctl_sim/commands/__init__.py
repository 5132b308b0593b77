"""One module per flyctl command family; each exposes ``command()`` building its cobra sub-tree."""
