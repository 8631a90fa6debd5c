"""The catalogue: tracks, genres, labels, related tracks and search."""
