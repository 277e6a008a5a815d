"""The engine: small builders make a run; one loop trains K >= 1 members sharing a data order."""
