"""Data: in-memory uint8 datasets, their file readers, the user's own, on-device preprocessing."""
