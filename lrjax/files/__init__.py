"""Files that many processes share: atomic writes, and claims on a folder."""
