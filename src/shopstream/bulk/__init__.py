"""The batch path: files loaded straight into the lake, the store and the warehouse."""
